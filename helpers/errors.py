"""Plain-words explanations of the errors PyTorch raises in the lessons."""

from dataclasses import dataclass

# (fragment of PyTorch's message, what it means in plain words)
EXPLANATIONS = [
    ("does not require grad and does not have a grad_fn",
     "Nothing the loss depends on requires grad, so the loss has no graph (no grad_fn) and "
     "there is nothing for backward() to run through."),
    ("Inference tensors cannot be saved for backward",
     "A tensor made inside torch.inference_mode() was needed by a later recorded operation. "
     "Inference tensors cannot be saved for backward; clone() it outside the mode first."),
    ("modified by an inplace operation",
     "A tensor that backward() needs was changed in place after it was saved (its version "
     "counter moved). Edit a copy instead; note that detach() and .view() share the counter, "
     "so use detach().clone() for a real copy."),
    ("a leaf Variable that requires grad is being used in an in-place operation",
     "A parameter that requires grad was updated in place while autograd was recording. "
     "Wrap manual updates in torch.no_grad()."),
    ("Trying to backward through the graph a second time",
     "This backward ran into a part of the graph that an earlier backward already freed. "
     "Usually a tensor carries history it should not: a hidden state carried across chunks, "
     "a GAN's fake or an actor's action reused in a second loss. Fix that first: detach() it "
     "where its history should stop. retain_graph=True on the first backward is the fix only "
     "when two backward passes through one graph are really meant; where a detach() is "
     "missing it hides the bug, leaving gradients that should not exist (or a version error "
     "after a step)."),
    ("grad can be implicitly created only for scalar outputs",
     "backward() on a tensor with more than one element needs a gradient argument."),
    ("Inplace update to inference tensor outside InferenceMode",
     "An in-place edit of an inference tensor outside torch.inference_mode() raises, but "
     "only after writing the new values: the tensor has changed anyway. clone() it outside "
     "the mode and edit the clone (inside a later inference_mode block the edit is allowed)."),
    ("post accumulate grad hooks should return None",
     "A register_post_accumulate_grad_hook function edits p.grad in place and must return "
     "None. A lambda like `lambda p: p.grad.mul_(0.5)` returns the tensor mul_ gives back; "
     "write a def without a return."),
    ("optimizer got an empty parameter list",
     "The optimizer was given no parameters: every parameter is frozen, so the list of "
     "trainable ones is empty. Leave something to train; for evaluation only, use eval() and "
     "torch.no_grad() without an optimizer."),
]


@dataclass(frozen=True)
class CaughtError:
    """An error that real PyTorch raised during a step, kept as part of the lesson."""

    kind: str
    message: str
    explanation: str

    def __str__(self):
        return f"{self.kind}: {self.message}\n-> {self.explanation}"


def explain(error):
    """Wrap an exception raised by PyTorch as a :class:`CaughtError`."""
    message = str(error).strip().splitlines()[0] if str(error).strip() else ""
    for fragment, meaning in EXPLANATIONS:
        if fragment in str(error):
            return CaughtError(type(error).__name__, message, meaning)
    return CaughtError(type(error).__name__, message, "PyTorch refused this combination.")
