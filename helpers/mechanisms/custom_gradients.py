"""custom_gradients: a gradient trick inserted on the toy net's L1 -> L2 path.

Three tricks (from :mod:`helpers.custom_grad`), each written as an ``autograd.Function`` or
as a ``detach()`` expression (same values, same gradients), inserted at one of three points:

- after L1 (before the ReLU), after the ReLU (before L2), or after L2 (on the output).

The parameters *upstream* of the insertion point (computed before it) get the rewritten
gradient; those downstream are untouched by a reversal or scaling, whose forward is the
identity. The STE changes the forward values, so the gradients downstream can change too.
No trick sets a gradient to ``None``: they rewrite gradients, they do not switch them off.

The step calls ``backward(retain_graph=True)`` only so that the graph can still be drawn:
torchviz reads each node's ``saved_tensors``, and on a custom ``Function``'s node that raises
once ``backward()`` has freed the graph.

Introduced in notebook 13_custom_gradients.
"""

import torch

from .. import custom_grad
from ..exercises import Hint, exercise
from ..grad_table import extra_column_table
from ..outcome import toy_net_after_backward
from ..registry import Mechanism, Option, register
from ..toy import LEARNING_RATE, PARAM_NAMES, toy_batch, toy_loss, toy_net

LAM = 1.0  # gradient reversal: backward multiplies by -LAM
SCALE = 0.1  # gradient scaling: backward multiplies by SCALE

TRICKS = {"none": "none (plain step)", "ste": "straight-through round",
          "reverse": "gradient reversal", "scale": f"scale gradient x{SCALE}"}
WHERES = {"after_l1": "after L1", "after_relu": "after ReLU", "after_l2": "after L2"}
FORMS = {"function": "autograd.Function", "expression": "detach() expression"}
# Parameters computed before each insertion point: the trick's backward reaches them.
UPSTREAM = {"after_l1": ("l1.weight", "l1.bias"), "after_relu": ("l1.weight", "l1.bias"),
            "after_l2": PARAM_NAMES}


def apply_trick(t, trick, form):
    """``t`` passed through ``trick`` written as ``form``."""
    if trick == "none":
        return t
    if form == "function":
        return {"ste": lambda: custom_grad.ste(t),
                "reverse": lambda: custom_grad.grad_reverse(t, LAM),
                "scale": lambda: custom_grad.scale_grad(t, SCALE)}[trick]()
    return {"ste": lambda: custom_grad.ste_expr(t),
            "reverse": lambda: custom_grad.scale_grad_expr(t, -LAM),
            "scale": lambda: custom_grad.scale_grad_expr(t, SCALE)}[trick]()


def forward_with_trick(net, x, trick="none", where="after_relu", form="function"):
    """The toy net's forward pass with ``trick`` inserted at ``where``."""
    h = net.l1(x)
    if where == "after_l1":
        h = apply_trick(h, trick, form)
    a = torch.relu(h)
    if where == "after_relu":
        a = apply_trick(a, trick, form)
    out = net.l2(a)
    if where == "after_l2":
        out = apply_trick(out, trick, form)
    return out


def plain_grads():
    """Each parameter's gradient in one plain step of a fresh toy net."""
    return {n: p.grad.clone() for n, p in toy_net_after_backward().named_parameters()}


def versus_plain(grad, plain):
    """How ``grad`` relates to the plain step's ``plain``: ``same``, ``-1 x plain``,
    ``0.1 x plain`` (a multiple, to float tolerance) or ``differs``."""
    if grad is None:
        return "None"
    k = float((grad * plain).sum() / (plain * plain).sum())
    if not torch.allclose(grad, k * plain, rtol=1e-4, atol=1e-7):
        return "differs"
    k = round(k, 4)
    return "same" if k == 1 else f"{k:g} x plain"


def custom_gradients_step(ctx, trick="reverse", where="after_relu", form="function"):
    """One SGD step of the toy net with ``trick`` (as ``form``) inserted at ``where``."""
    net = ctx.net
    optimizer = torch.optim.SGD(net.parameters(), lr=LEARNING_RATE)
    optimizer.zero_grad()
    # retain_graph=True only so the graph can be drawn afterwards: torchviz reads a custom
    # Function node's saved_tensors, which raises once backward() has freed them.
    ctx.loss_of(forward_with_trick(net, ctx.x, trick, where, form)).backward(retain_graph=True)
    plain = plain_grads()
    upstream = UPSTREAM[where] if trick != "none" else ()
    ctx.note("position", {n: "upstream" if n in upstream else "downstream"
                          for n in PARAM_NAMES} if trick != "none" else
             {n: "-" for n in PARAM_NAMES})
    ctx.note("plain grad norm", {n: f"{float(plain[n].norm()):.4f}" for n in PARAM_NAMES})
    ctx.note("grad vs plain", {n: versus_plain(p.grad, plain[n])
                               for n, p in net.named_parameters()})
    optimizer.step()


CUSTOM_GRADIENTS = register(Mechanism(
    name="custom_gradients",
    title="A gradient trick on the L1 -> L2 path",
    step=custom_gradients_step,
    options=(
        Option("trick", TRICKS, "reverse", "Which gradient trick to insert"),
        Option("where", WHERES, "after_relu", "Where on the L1 -> ReLU -> L2 path"),
        Option("form", FORMS, "function",
               "Written as an autograd.Function, or as an expression with detach()"),
    ),
    notebook="13_custom_gradients",
    summary="Rewrite a gradient on its way back: straight-through rounding, reversal, "
            "scaling. Every parameter still gets a gradient.",
    in_comparison=False,
    predictions={
        "trick=ste, where=after_l1, form=expression":
            "The detach() cuts only the correction term (rounded h - h); h itself is still "
            "added, so the gradient flows through h into L1 as if the rounding were not there. "
            "This is the straight-through estimator: all four parameters get a gradient.",
    },
    caption=lambda o: ("plain step" if o["trick"] == "none" else
                       f"{TRICKS[o['trick']]} {WHERES[o['where']]}, as {FORMS[o['form']]}"),
))


def trick_table(form="function"):
    """Every trick x insertion point: each parameter's gradient against the plain step."""
    return extra_column_table("custom_gradients", ("trick", "where"), "grad vs plain",
                              f"custom_gradients ({FORMS[form]}): each gradient against the "
                              "plain step's", form=form)


# ---- exercises -----------------------------------------------------------------------------

class ClampForgettingLimit(torch.autograd.Function):
    """Exercise 13.1: a clamp whose backward forgets its second input's gradient."""

    @staticmethod
    def forward(ctx, t, limit):
        ctx.save_for_backward(t, limit)
        return torch.minimum(t, limit)

    @staticmethod
    def backward(ctx, grad_output):
        t, limit = ctx.saved_tensors
        return grad_output * (t < limit), None


@exercise("13.1", why="backward() returns one gradient per input of forward(); the None it "
                      "returns for `limit` means 'no gradient', so limit.grad stays None "
                      "although limit requires grad. The toy net's four parameters all get "
                      "one: L1's through grad_output * (t < limit), L2's after the clamp as "
                      "usual.",
          hints=(Hint(set, "limit requires grad, but look at what backward() returns for it: "
                           "None there is not a zero gradient, it is no gradient at all."),))
def grads_none_with_clamp_forgetting_limit():
    net = toy_net()
    x, y = toy_batch()
    limit = torch.nn.Parameter(torch.tensor(0.5))
    out = net.l2(ClampForgettingLimit.apply(torch.relu(net.l1(x)), limit))
    toy_loss(out, y).backward()
    named = dict(net.named_parameters(), limit=limit)
    return {n for n, p in named.items() if p.grad is None}


@exercise("13.2", why="The gradient flowing back into L1 passes through ScaleGrad (x 0.1) and "
                      "then GradReverse (x -2.0): l1.bias.grad is -0.2 x the plain one. Both "
                      "forwards are the identity, so L2's gradient is unchanged.",
          hints=(Hint(lambda: SCALE, "That is ScaleGrad alone; the gradient passes another "
                                     "trick on its way back to L1."),
                 Hint(lambda: -2.0, "That is GradReverse alone; the gradient passes another "
                                    "trick on its way back to L1."),
                 Hint(lambda: 1.0, "That is L2's ratio: both tricks sit between L1 and L2, "
                                   "so L2's gradient never passes them. L1's passes both."),))
def l1_bias_grad_ratio_reversed_then_scaled():
    net = toy_net()
    x, y = toy_batch()
    a = custom_grad.scale_grad(torch.relu(custom_grad.grad_reverse(net.l1(x), 2.0)), SCALE)
    toy_loss(net.l2(a), y).backward()
    plain = plain_grads()["l1.bias"]
    return round(float((net.l1.bias.grad * plain).sum() / (plain * plain).sum()), 6)


def _cube_sum_w():
    """Exercise 13.3's ``w`` (seed 0), without grad."""
    torch.manual_seed(0)
    return torch.randn(3)


@exercise("13.3", why="autograd.grad(..., create_graph=True) gives g = 3 w**2 as a tensor with "
                      "its own graph (and puts nothing into w.grad); backward() through "
                      "loss + g.sum() adds both terms' gradients: 3 w**2 + 6 w.",
          hints=(Hint(lambda: 6 * _cube_sum_w(), "That is the gradient through g alone; the "
                                                 "loss's own gradient is added too."),
                 Hint(lambda: 3 * _cube_sum_w() ** 2, "That is the loss's own gradient "
                                                      "alone; create_graph=True lets a "
                                                      "gradient flow back through g too."),))
def grad_of_cube_sum_plus_its_gradient():
    w = _cube_sum_w().requires_grad_()
    loss = (w ** 3).sum()
    (g,) = torch.autograd.grad(loss, w, create_graph=True)
    (loss + g.sum()).backward()
    return w.grad.detach().clone()
