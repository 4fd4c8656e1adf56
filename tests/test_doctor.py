"""The gradient doctor (helpers.diagnose) on real architectures, each cause on two models or more.

Every case states its expected causes by reasoning about the step (what was frozen, left out,
run under no_grad...), and ``check_plain`` confirms them against a plain run of the same step
without the doctor: the grads and values PyTorch itself leaves behind.
"""

import copy
import inspect
import socket
import warnings

import pytest
import torch
import torch.nn.functional as F
from torch import nn

import helpers
from helpers import graph
from helpers.doctor import CAUSES, diagnose
from helpers.doctor.drawing import module_diagram

SOURCE = inspect.getsource(inspect.getmodule(lambda: None))


def line_of(marker):
    """``test_doctor.py:N`` of the line holding ``marker`` (found in this file's source)."""
    numbers = [i + 1 for i, line in enumerate(SOURCE.splitlines()) if f"# {marker}" in line]
    assert len(numbers) == 1, marker
    return f"test_doctor.py:{numbers[0]}"


# ---------------------------------------------------------------- models, built by hand


class ResBlock(nn.Module):
    def __init__(self, c):
        super().__init__()
        self.conv1, self.bn1 = nn.Conv2d(c, c, 3, padding=1, bias=False), nn.BatchNorm2d(c)
        self.conv2, self.bn2 = nn.Conv2d(c, c, 3, padding=1, bias=False), nn.BatchNorm2d(c)

    def forward(self, x):
        out = torch.relu(self.bn1(self.conv1(x)))
        return torch.relu(self.bn2(self.conv2(out)) + x)


class ResNet(nn.Module):
    """conv + BatchNorm stem, one residual block, global pooling, a linear classifier."""

    def __init__(self):
        super().__init__()
        self.stem = nn.Sequential(nn.Conv2d(3, 4, 3, padding=1, bias=False), nn.BatchNorm2d(4))
        self.block = ResBlock(4)
        self.fc = nn.Linear(4, 3)

    def features(self, h):
        return self.block(torch.relu(h)).mean(dim=(2, 3))

    def forward(self, x):
        return self.fc(self.features(self.stem(x)))


class SeqModel(nn.Module):
    """Embedding -> LSTM or GRU -> linear head on the last step; logits / round(temperature)."""

    def __init__(self, rnn="lstm"):
        super().__init__()
        self.emb = nn.Embedding(10, 6)
        self.rnn = (nn.LSTM if rnn == "lstm" else nn.GRU)(6, 8, batch_first=True)
        self.head = nn.Linear(8, 3)
        self.temperature = nn.Parameter(torch.tensor(1.2))

    def forward(self, tokens, embedded=None):
        out, _ = self.rnn(self.emb(tokens) if embedded is None else embedded)
        return self.head(out[:, -1]) / torch.round(self.temperature)


class Encoder(nn.Module):
    """Linear embedding -> nn.TransformerEncoder (1 layer) -> mean over tokens -> head."""

    def __init__(self):
        super().__init__()
        self.embed = nn.Linear(5, 8)
        layer = nn.TransformerEncoderLayer(8, 2, 16, dropout=0.0, batch_first=True)
        self.encoder = nn.TransformerEncoder(layer, 1, enable_nested_tensor=False)
        self.head = nn.Linear(8, 2)

    def forward(self, x, embedded=None):
        h = self.embed(x) if embedded is None else embedded
        return self.head(self.encoder(h).mean(dim=1))


def images():
    g = torch.Generator().manual_seed(1)
    return torch.randn(4, 3, 6, 6, generator=g), torch.randint(0, 3, (4,), generator=g)


def tokens():
    g = torch.Generator().manual_seed(2)
    return torch.randint(0, 10, (4, 5), generator=g), torch.randint(0, 3, (4,), generator=g)


def sequences():
    g = torch.Generator().manual_seed(3)
    return torch.randn(4, 6, 5, generator=g), torch.randint(0, 2, (4,), generator=g)


def names(module, *prefixes):
    """Parameter names of ``module`` that start with any of ``prefixes``."""
    return [n for n, _ in module.named_parameters() if n.startswith(prefixes)]


def gan(seed=0):
    torch.manual_seed(seed)
    gen = nn.Sequential(nn.Linear(2, 8), nn.ReLU(), nn.Linear(8, 2))
    disc = nn.Sequential(nn.Linear(2, 8), nn.Tanh(), nn.Linear(8, 1))
    return nn.ModuleDict({"G": gen, "D": disc})


def actor_critic(seed=0):
    torch.manual_seed(seed)
    actor = nn.Sequential(nn.Linear(3, 8), nn.Tanh(), nn.Linear(8, 1))
    critic = nn.Sequential(nn.Linear(4, 8), nn.Tanh(), nn.Linear(8, 1))
    return nn.ModuleDict({"actor": actor, "critic": critic})


# ---------------------------------------------------------------- the cases
#
# Each builder returns (model, step, optimizer, tensors, expected) on fresh objects; expected
# names the parameters that are not "ok" and their cause, reasoned from the step's code.

CASES = {}


def case(build):
    CASES[build.__name__] = build
    return build


def classify(model, x, y, optimizer, body):
    """A classification step: zero_grad, ``body()`` logits, cross-entropy, backward, step."""
    def step():
        optimizer.zero_grad()
        loss = F.cross_entropy(body(), y)
        loss.backward()
        optimizer.step()
        return loss
    return step


@case
def resnet_frozen_stem():
    torch.manual_seed(0)
    model, (x, y) = ResNet(), images()
    model.stem.requires_grad_(False)
    opt = torch.optim.Adam(model.parameters(), lr=0.01)
    return model, classify(model, x, y, opt, lambda: model(x)), opt, {}, \
        dict.fromkeys(names(model, "stem."), "frozen")


@case
def lstm_frozen_embedding():
    torch.manual_seed(0)
    model, (x, y) = SeqModel("lstm"), tokens()
    model.emb.weight.requires_grad_(False)
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    return model, classify(model, x, y, opt, lambda: model(x)), opt, {}, \
        {"emb.weight": "frozen", "temperature": "zero_grad"}


@case
def encoder_unused_head():
    torch.manual_seed(0)
    model, (x, y) = Encoder(), sequences()
    model.aux = nn.Linear(8, 2)  # never called by forward
    opt = torch.optim.AdamW(model.parameters(), lr=0.01)
    return model, classify(model, x, y, opt, lambda: model(x)), opt, {}, \
        dict.fromkeys(names(model, "aux."), "unused")


@case
def toy_unused_layer():
    model = helpers.toy_net()
    model.extra = nn.Linear(4, 4)
    x, y = helpers.toy_batch()
    opt = torch.optim.SGD(model.parameters(), lr=0.1)

    def step():
        opt.zero_grad()
        loss = helpers.toy_loss(model(x), y)
        loss.backward()
        opt.step()
        return loss
    return model, step, opt, {}, dict.fromkeys(["extra.weight", "extra.bias"], "unused")


@case
def resnet_stem_under_no_grad():
    torch.manual_seed(0)
    model, (x, y) = ResNet(), images()
    opt = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9)

    def logits():
        with torch.no_grad():
            h = model.stem(x)
        return model.fc(model.features(h))
    return model, classify(model, x, y, opt, logits), opt, {}, \
        dict.fromkeys(names(model, "stem."), "no_grad")


@case
def gru_embedding_under_no_grad():
    torch.manual_seed(0)
    model, (x, y) = SeqModel("gru"), tokens()
    opt = torch.optim.SGD(model.parameters(), lr=0.1)

    def logits():
        with torch.no_grad():
            e = model.emb(x)
        return model(x, embedded=e)
    return model, classify(model, x, y, opt, logits), opt, {}, \
        {"emb.weight": "no_grad", "temperature": "zero_grad"}


@case
def resnet_stem_under_inference_mode():
    torch.manual_seed(0)
    model, (x, y) = ResNet(), images()
    opt = torch.optim.SGD(model.parameters(), lr=0.1)

    def logits():
        with torch.inference_mode():
            h = model.stem(x)
        return model.fc(model.features(h.clone()))
    return model, classify(model, x, y, opt, logits), opt, {}, \
        dict.fromkeys(names(model, "stem."), "inference_mode")


@case
def encoder_embedding_under_inference_mode():
    torch.manual_seed(0)
    model, (x, y) = Encoder(), sequences()
    opt = torch.optim.SGD(model.parameters(), lr=0.1)

    def logits():
        with torch.inference_mode():
            h = model.embed(x)
        return model(x, embedded=h.clone())
    return model, classify(model, x, y, opt, logits), opt, {}, \
        dict.fromkeys(names(model, "embed."), "inference_mode")


@case
def gan_generator_loss_on_detached_fake():
    model, z, real = gan(), torch.randn(8, 2), torch.randn(8, 2) + 2
    gen, disc = model["G"], model["D"]
    opt_g = torch.optim.Adam(gen.parameters(), lr=1e-3)
    opt_d = torch.optim.Adam(disc.parameters(), lr=1e-3)
    ones, zeros = torch.ones(8, 1), torch.zeros(8, 1)

    def step():
        fake = gen(z)
        opt_d.zero_grad()
        d_loss = (F.binary_cross_entropy_with_logits(disc(real), ones)
                  + F.binary_cross_entropy_with_logits(disc(fake.detach()), zeros))
        d_loss.backward()
        opt_d.step()
        opt_g.zero_grad()
        g_loss = F.binary_cross_entropy_with_logits(disc(fake.detach()), ones)  # the bug
        g_loss.backward()
        opt_g.step()
        return d_loss, g_loss
    return model, step, [opt_g, opt_d], {}, dict.fromkeys(names(model, "G."), "detached")


@case
def actor_critic_actor_loss_on_detached_action():
    model = actor_critic()
    actor, critic = model["actor"], model["critic"]
    opt_a = torch.optim.Adam(actor.parameters(), lr=1e-3)
    opt_c = torch.optim.Adam(critic.parameters(), lr=1e-3)
    g = torch.Generator().manual_seed(4)
    s, a, r = torch.randn(8, 3, generator=g), torch.randn(8, 1, generator=g), torch.randn(8, 1)

    def step():
        opt_c.zero_grad()
        c_loss = F.mse_loss(critic(torch.cat([s, a], 1)), r)
        c_loss.backward()
        opt_c.step()
        opt_a.zero_grad()
        a_loss = -critic(torch.cat([s, actor(s).detach()], 1)).mean()  # the bug
        a_loss.backward()
        opt_a.step()
        return c_loss, a_loss
    return model, step, [opt_a, opt_c], {}, dict.fromkeys(names(model, "actor."), "detached")


@case
def lstm_features_detached_before_head():
    torch.manual_seed(0)
    model, (x, y) = SeqModel("lstm"), tokens()
    opt = torch.optim.SGD(model.parameters(), lr=0.1)

    def logits():
        out, _ = model.rnn(model.emb(x))
        return model.head(out[:, -1].detach())
    expected = dict.fromkeys(names(model, "emb.", "rnn."), "detached")
    expected["temperature"] = "unused"
    return model, classify(model, x, y, opt, logits), opt, {}, expected


@case
def toy_weight_read_through_data():
    model = helpers.toy_net()
    x, y = helpers.toy_batch()
    opt = torch.optim.SGD(model.parameters(), lr=0.1)

    def step():
        opt.zero_grad()
        h = torch.relu(x @ model.l1.weight.data.T + model.l1.bias)
        loss = helpers.toy_loss(model.l2(h), y)
        loss.backward()
        opt.step()
        return loss
    return model, step, opt, {}, {"l1.weight": "detached"}


@case
def toy_prior_moved_after_requires_grad():
    model = helpers.toy_net()
    x, y = helpers.toy_batch()
    prior = torch.zeros(1, requires_grad=True).double()
    opt = torch.optim.SGD(model.parameters(), lr=0.1)

    def step():
        opt.zero_grad()
        loss = helpers.toy_loss(model(x).double() + prior, y.double())
        loss.backward()
        opt.step()
        return loss
    return model, step, opt, {"prior": prior}, {"prior": "non_leaf"}


@case
def encoder_scale_computed_from_leaf():
    torch.manual_seed(0)
    model, (x, y) = Encoder(), sequences()
    scale = torch.ones(1, requires_grad=True) * 1
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    return model, classify(model, x, y, opt, lambda: model(x) * scale), opt, \
        {"scale": scale}, {"scale": "non_leaf"}


@case
def resnet_stem_left_out_of_param_groups():
    torch.manual_seed(0)
    model, (x, y) = ResNet(), images()
    opt = torch.optim.SGD([{"params": model.block.parameters()},
                           {"params": model.fc.parameters(), "lr": 0.01}], lr=0.1)
    return model, classify(model, x, y, opt, lambda: model(x)), opt, {}, \
        dict.fromkeys(names(model, "stem."), "not_in_optimizer")


@case
def encoder_head_replaced_after_optimizer():
    torch.manual_seed(0)
    model, (x, y) = Encoder(), sequences()
    opt = torch.optim.Adam(model.parameters(), lr=0.01)
    model.head = nn.Linear(8, 2)
    return model, classify(model, x, y, opt, lambda: model(x)), opt, {}, \
        dict.fromkeys(names(model, "head."), "not_in_optimizer")


@case
def toy_dead_relu():
    model = helpers.toy_net()
    with torch.no_grad():
        model.l1.bias.fill_(-100.0)  # every pre-activation < 0: ReLU passes no gradient
    x, y = helpers.toy_batch()
    opt = torch.optim.SGD(model.parameters(), lr=0.1)

    def step():
        opt.zero_grad()
        loss = helpers.toy_loss(model(x), y)
        loss.backward()
        opt.step()
        return loss
    # l2.weight multiplies the all-zero ReLU output, so its gradient is zero too.
    return model, step, opt, {}, dict.fromkeys(["l1.weight", "l1.bias", "l2.weight"],
                                               "zero_grad")


@case
def gru_temperature_through_round():
    torch.manual_seed(0)
    model, (x, y) = SeqModel("gru"), tokens()
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    # round() has derivative 0 everywhere it has one: the temperature's gradient is zero.
    return model, classify(model, x, y, opt, lambda: model(x)), opt, {}, \
        {"temperature": "zero_grad"}


@case
def toy_learning_rate_zero():
    model = helpers.toy_net()
    x, y = helpers.toy_batch()
    opt = torch.optim.SGD(model.parameters(), lr=0.0)

    def step():
        opt.zero_grad()
        loss = helpers.toy_loss(model(x), y)
        loss.backward()
        opt.step()
        return loss
    return model, step, opt, {}, dict.fromkeys(helpers.PARAM_NAMES, "not_moved")


@case
def resnet_param_group_with_lr_zero():
    torch.manual_seed(0)
    model, (x, y) = ResNet(), images()
    opt = torch.optim.SGD([{"params": [*model.stem.parameters(), *model.block.parameters()]},
                           {"params": model.fc.parameters(), "lr": 0.0}], lr=0.1)
    return model, classify(model, x, y, opt, lambda: model(x)), opt, {}, \
        dict.fromkeys(names(model, "fc."), "not_moved")


@case
def gan_generator_step_forgotten():
    model, z, real = gan(1), torch.randn(8, 2), torch.randn(8, 2) + 2
    gen, disc = model["G"], model["D"]
    opt_g = torch.optim.SGD(gen.parameters(), lr=0.05)
    opt_d = torch.optim.SGD(disc.parameters(), lr=0.05)
    ones, zeros = torch.ones(8, 1), torch.zeros(8, 1)

    def step():
        fake = gen(z)
        opt_d.zero_grad()
        d_loss = (F.binary_cross_entropy_with_logits(disc(real), ones)
                  + F.binary_cross_entropy_with_logits(disc(fake.detach()), zeros))
        d_loss.backward()
        opt_d.step()
        opt_g.zero_grad()
        g_loss = F.binary_cross_entropy_with_logits(disc(fake), ones)
        g_loss.backward()
        return d_loss, g_loss  # the bug: no opt_g.step()
    return model, step, [opt_g, opt_d], {}, dict.fromkeys(names(model, "G."), "not_moved")


class GradientReversal(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x):
        return x.view_as(x)

    @staticmethod
    def backward(ctx, grad):
        return -grad


@case
def domain_adversarial_gradient_reversal():
    torch.manual_seed(0)
    model = nn.ModuleDict({"features": nn.Linear(4, 6), "label": nn.Linear(6, 2),
                           "domain": nn.Linear(6, 1)})
    g = torch.Generator().manual_seed(5)
    x, y, d = torch.randn(8, 4, generator=g), torch.randint(0, 2, (8,), generator=g), \
        torch.rand(8, 1, generator=g).round()
    opt = torch.optim.SGD(model.parameters(), lr=0.1)

    def step():
        opt.zero_grad()
        h = torch.relu(model["features"](x))
        loss = (F.cross_entropy(model["label"](h), y) + F.binary_cross_entropy_with_logits(
            model["domain"](GradientReversal.apply(h)), d))
        loss.backward()
        opt.step()
        return loss
    return model, step, opt, {}, {}


@case
def quantised_straight_through_estimator():
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(4, 6), nn.Linear(6, 1))
    x, y = helpers.toy_batch()
    opt = torch.optim.SGD(model.parameters(), lr=0.1)

    def step():
        opt.zero_grad()
        h = model[0](x)
        h = h + (torch.round(h * 4) / 4 - h).detach()  # forward: rounded; backward: identity
        loss = F.mse_loss(model[1](h), y)
        loss.backward()
        opt.step()
        return loss
    return model, step, opt, {}, {}


def all_causes(model, tensors, expected):
    every = [n for n, _ in model.named_parameters()] + list(tensors)
    return {n: expected.get(n, "ok") for n in every}


def check_plain(build):
    """Run the case's step plainly (no doctor) and check each expected cause against it."""
    model, step, opt, tensors, expected = build()
    before = {n: p.detach().clone() for n, p in model.named_parameters()}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # .grad of a non-leaf warns
        step()
        for name, cause in all_causes(model, tensors, expected).items():
            t = dict(model.named_parameters()).get(name, tensors.get(name))
            grad = t.grad if t.is_leaf else None
            moved = name in before and not torch.equal(before[name], t.detach())
            if cause == "frozen":
                assert not t.requires_grad and grad is None, name
            elif cause in ("unused", "inference_mode", "no_grad", "detached"):
                assert t.requires_grad and grad is None and not moved, name
            elif cause == "non_leaf":
                assert not t.is_leaf and t.requires_grad, name
            elif cause == "not_in_optimizer":
                assert grad is not None and torch.any(grad) and not moved, name
            elif cause == "zero_grad":
                assert grad is not None and not torch.any(grad) and not moved, name
            elif cause == "not_moved":
                assert grad is not None and torch.any(grad) and not moved, name
            else:
                assert cause == "ok" and grad is not None and torch.any(grad) and moved, name


@pytest.mark.parametrize("name", sorted(CASES))
def test_causes_on_real_architectures(name):
    check_plain(CASES[name])
    model, step, opt, tensors, expected = CASES[name]()
    result = diagnose(model, step, opt, tensors=tensors)
    assert result.causes == all_causes(model, tensors, expected)
    assert result.error is None


def test_each_cause_is_tested_on_two_models_or_more():
    models = {}
    for name, build in CASES.items():
        model, _, _, _, expected = build()
        for cause in set(expected.values()) | {"ok"}:
            models.setdefault(cause, set()).add(type(model).__name__ + name.split("_")[0])
    assert set(models) == set(CAUSES)
    assert all(len(kinds) >= 2 for kinds in models.values()), models


# ---------------------------------------------------------------- the details say why


def test_details_name_the_cut_and_the_group_learning_rate():
    model, step, opt, tensors, _ = CASES["toy_weight_read_through_data"]()
    assert "`data`" in diagnose(model, step, opt).params["l1.weight"].detail
    model, step, opt, tensors, _ = CASES["resnet_param_group_with_lr_zero"]()
    report = diagnose(model, step, opt).params["fc.weight"]
    assert report.optimizer == "lr 0" and "learning rate is 0" in report.detail


def test_backward_inputs_and_never_calling_backward_are_explained():
    model, x, y = helpers.toy_net(), *helpers.toy_batch()

    def only_l2():
        loss = helpers.toy_loss(model(x), y)
        loss.backward(inputs=[model.l2.weight, model.l2.bias])
        return loss

    result = diagnose(model, only_l2)
    assert [result.causes[n] for n in helpers.PARAM_NAMES] == ["detached"] * 2 + ["ok"] * 2
    assert "inputs=" in result.params["l1.weight"].detail

    def forgot_backward():
        return helpers.toy_loss(model(x), y)

    result = diagnose(model, forgot_backward)
    assert set(result.causes.values()) == {"detached"}
    assert "never called backward()" in result.params["l1.bias"].detail


def test_zero_grad_between_backward_and_step_is_caught():
    model, x, y = helpers.toy_net(), *helpers.toy_batch()
    opt = torch.optim.SGD(model.parameters(), lr=0.1)

    def step():
        loss = helpers.toy_loss(model(x), y)
        loss.backward()
        opt.zero_grad()  # the bug: clears what backward() just filled
        opt.step()
        return loss

    result = diagnose(model, step, opt)
    assert set(result.causes.values()) == {"zero_grad"}
    assert "set back to None" in result.params["l1.weight"].detail


def test_an_optimizer_with_a_closure_runs_the_step_inside_step():
    model, x, y = helpers.toy_net(), *helpers.toy_batch()
    model.l1.bias.requires_grad_(False)
    opt = torch.optim.LBFGS([p for p in model.parameters() if p.requires_grad], max_iter=2)

    def closure():
        opt.zero_grad()
        loss = helpers.toy_loss(model(x), y)
        loss.backward()
        return loss

    def step():
        return opt.step(closure)

    before = state_of(model, [opt])
    result = diagnose(model, step, opt)
    assert result.causes == {"l1.weight": "ok", "l1.bias": "frozen", "l2.weight": "ok",
                             "l2.bias": "ok"}
    assert_same(before, state_of(model, [opt]))


@pytest.mark.parametrize("reentrant", [True, False])
def test_checkpoint_behind_a_frozen_embedding(reentrant):
    """Fact 46: reentrant checkpointing with no input that requires grad leaves its block out."""
    from torch.utils.checkpoint import checkpoint

    def build():
        torch.manual_seed(0)
        model = nn.ModuleDict({"emb": nn.Embedding(10, 4), "block": nn.Linear(4, 4),
                               "head": nn.Linear(4, 1)})
        model["emb"].requires_grad_(False)
        tokens = torch.arange(6)

        def step():
            h = checkpoint(model["block"], model["emb"](tokens), use_reentrant=reentrant)
            loss = model["head"](h).pow(2).mean()
            loss.backward()
            return loss
        return model, step

    model, step = build()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # reentrant checkpoint warns: no input requires grad
        step()
        block_grad = model["block"].weight.grad
        model, step = build()
        result = diagnose(model, step)
    assert (block_grad is None) == reentrant  # the plain run, for the expectation below
    block = "no_grad" if reentrant else "ok"
    assert result.causes == {"emb.weight": "frozen", "block.weight": block,
                             "block.bias": block, "head.weight": "ok", "head.bias": "ok"}
    if reentrant:
        assert "use_reentrant=False" in result.params["block.weight"].fix


def test_optimizers_are_found_when_not_given():
    model, step, _, _, expected = CASES["gan_generator_step_forgotten"]()
    result = diagnose(model, step)  # opt_d steps: found; opt_g never steps: unknown
    assert all(result.causes[n] == "not_in_optimizer" for n in names(model, "G."))
    assert all(result.causes[n] == "ok" for n in names(model, "D."))


def test_a_ddp_wrapped_model_is_diagnosed_through_its_wrapper():
    import torch.distributed as dist

    created = not dist.is_initialized()
    if created:
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            port = s.getsockname()[1]
        dist.init_process_group("gloo", init_method=f"tcp://127.0.0.1:{port}", rank=0,
                                world_size=1)
    try:
        net = helpers.toy_net()
        net.l1.requires_grad_(False)
        ddp = nn.parallel.DistributedDataParallel(net)
        opt = torch.optim.SGD([p for p in ddp.parameters() if p.requires_grad], lr=0.1)
        x, y = helpers.toy_batch()

        def step():
            opt.zero_grad()
            loss = helpers.toy_loss(ddp(x), y)
            loss.backward()
            opt.step()
            return loss

        result = diagnose(ddp, step, opt)
        assert result.causes == {"module.l1.weight": "frozen", "module.l1.bias": "frozen",
                                 "module.l2.weight": "ok", "module.l2.bias": "ok"}
    finally:
        if created:
            dist.destroy_process_group()


# ---------------------------------------------------------------- restoring


def state_of(model, optimizers):
    return {"params": {n: p.detach().clone() for n, p in model.named_parameters()},
            "grads": {n: None if p.grad is None else p.grad.clone()
                      for n, p in model.named_parameters()},
            "grad_ids": {n: id(p.grad) for n, p in model.named_parameters()},
            "buffers": {n: b.clone() for n, b in model.named_buffers()},
            "optim": [copy.deepcopy(o.state_dict()) for o in optimizers],
            "rng": torch.get_rng_state()}


def assert_same(a, b):
    if isinstance(a, torch.Tensor):
        assert isinstance(b, torch.Tensor) and torch.equal(a, b)
    elif isinstance(a, dict):
        assert a.keys() == b.keys()
        for key in a:
            assert_same(a[key], b[key])
    elif isinstance(a, (list, tuple)):
        assert len(a) == len(b)
        for x, y in zip(a, b):
            assert_same(x, y)
    else:
        assert a == b


def trained_resnet():
    """A ResNet after one Adam step, with Dropout; one grad set to None, one left in place."""
    torch.manual_seed(0)
    model, (x, y) = ResNet(), images()
    model.drop = nn.Dropout(0.5)
    opt = torch.optim.Adam([{"params": [*model.stem.parameters(), *model.block.parameters()]},
                            {"params": model.fc.parameters(), "lr": 0.01}], lr=1e-3)

    def step():
        opt.zero_grad()
        loss = F.cross_entropy(model.fc(model.drop(model.features(model.stem(x)))), y)
        loss.backward()
        opt.step()
        return loss

    step()
    model.stem[0].weight.grad = None
    return model, step, opt


def test_restore_puts_back_params_grads_buffers_optimizer_and_rng():
    model, step, opt = trained_resnet()
    before = state_of(model, [opt])
    result = diagnose(model, step, opt)
    assert result.causes["stem.0.weight"] == "ok"
    assert_same(before, state_of(model, [opt]))
    plain = state_of(model, [opt])
    step()  # the diagnosed step did not count: a real step now gives a real step's result
    after_real = state_of(model, [opt])
    assert not torch.equal(plain["params"]["fc.weight"], after_real["params"]["fc.weight"])


def test_restore_after_an_error_and_its_rerun():
    model, x, y = helpers.toy_net(), *helpers.toy_batch()
    opt = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
    helpers.toy_loss(model(x), y).backward()
    opt.step()
    before = state_of(model, [opt])

    def step():
        opt.step()  # moves the weights before the broken part
        h = torch.sigmoid(model.l1(x))
        h.mul_(2)
        loss = helpers.toy_loss(model.l2(h), y)
        loss.backward()
        return loss

    result = diagnose(model, step, opt)
    assert result.error is not None
    assert_same(before, state_of(model, [opt]))


def test_restore_false_keeps_the_step():
    model, step, opt = trained_resnet()
    twin, twin_step, twin_opt = trained_resnet()
    torch.manual_seed(7)  # the same dropout masks in both runs
    twin_step()
    torch.manual_seed(7)
    diagnose(model, step, opt, restore=False)
    expected, got = state_of(twin, [twin_opt]), state_of(model, [opt])
    assert_same(expected["params"], got["params"])
    assert_same(expected["optim"], got["optim"])


def test_auto_found_optimizers_are_restored_too():
    model, step, opts, _, _ = CASES["gan_generator_loss_on_detached_fake"]()
    before = state_of(model, opts)
    diagnose(model, step)  # the optimizers are not given: found when they step
    assert_same(before, state_of(model, opts))


# ---------------------------------------------------------------- errors, in plain words


def test_inplace_relu_after_sigmoid_names_both_lines(recwarn, capfd):
    model, x, y = helpers.toy_net(), *helpers.toy_batch()
    act = nn.ReLU(inplace=True)

    def step():
        h = torch.sigmoid(model.l1(x))  # SAVES-1
        h = act(h)  # EDITS-1
        loss = helpers.toy_loss(model.l2(h), y)
        loss.backward()
        return loss

    result = diagnose(model, step)
    assert "modified by an inplace operation" in result.error
    assert f"by the operation whose gradient is SigmoidBackward0, at: {line_of('SAVES-1')}" \
        in result.error
    assert f"Edited in place afterwards by `relu` at: {line_of('EDITS-1')}" in result.error
    assert "inplace=True" in result.error.split("Fix:")[1]
    assert len(recwarn) == 0 and capfd.readouterr() == ("", "")


def test_inplace_residual_add_in_a_resnet():
    torch.manual_seed(0)
    model, (x, y) = ResNet(), images()

    def step():
        h = model.stem(x)
        out = torch.relu(model.block.bn1(model.block.conv1(h)))  # SAVES-2
        out += h  # EDITS-2
        loss = F.cross_entropy(model.fc(out.mean(dim=(2, 3))), y)
        loss.backward()
        return loss

    result = diagnose(model, step)
    assert line_of("SAVES-2") in result.error and line_of("EDITS-2") in result.error
    assert "`out = out + h`" in result.error


def test_inplace_mask_assignment_in_an_encoder():
    torch.manual_seed(0)
    model, (x, y) = Encoder(), sequences()

    def step():
        gate = torch.sigmoid(model.embed(x))
        gate[gate < 0.5] = 0  # EDITS-3
        loss = F.cross_entropy(model(x, embedded=gate), y)
        loss.backward()
        return loss

    result = diagnose(model, step)
    assert f"by `__setitem__` at: {line_of('EDITS-3')}" in result.error
    assert "masked_fill" in result.error


def test_weights_changed_by_optimizer_step_before_a_second_backward():
    model = gan()
    gen, disc = model["G"], model["D"]
    opt_g = torch.optim.SGD(gen.parameters(), lr=0.1)
    opt_d = torch.optim.SGD(disc.parameters(), lr=0.1)
    z, real = torch.randn(8, 2), torch.randn(8, 2)

    def step():
        fake = gen(z)
        opt_d.zero_grad()
        d_loss = disc(real).mean() - disc(fake).mean()
        d_loss.backward(retain_graph=True)
        opt_d.step()  # STEP-4
        opt_g.zero_grad()
        d_loss.backward()
        opt_g.step()
        return d_loss

    result = diagnose(model, step, [opt_g, opt_d])
    assert f"Edited in place afterwards by optimizer.step(), called at: {line_of('STEP-4')}" \
        in result.error


def test_constant_loss_names_the_argmax_line():
    torch.manual_seed(0)
    model, (x, y) = Encoder(), sequences()

    def step():
        predicted = model(x).argmax(dim=1)  # ARGMAX-5
        loss = (predicted != y).float().mean()
        loss.backward()  # RAISES-5
        return loss

    result = diagnose(model, step)
    assert "does not require grad" in result.error
    assert f"Raised at: {line_of('RAISES-5')}" in result.error
    assert f"`argmax` at {line_of('ARGMAX-5')}" in result.error
    assert set(result.causes.values()) == {"detached"}


def test_constant_loss_lists_the_frozen_parameters():
    model, x, y = helpers.toy_net(), *helpers.toy_batch()
    model.requires_grad_(False)

    def step():
        loss = helpers.toy_loss(model(x), y)
        loss.backward()
        return loss

    result = diagnose(model, step)
    assert "frozen parameters: l1.weight, l1.bias, l2.weight, l2.bias" in result.error
    assert set(result.causes.values()) == {"frozen"}


def test_second_backward_names_the_backward_that_freed_the_graph():
    model = gan()
    gen, disc = model["G"], model["D"]
    opt_g = torch.optim.SGD(gen.parameters(), lr=0.1)
    opt_d = torch.optim.SGD(disc.parameters(), lr=0.1)
    z, real = torch.randn(8, 2), torch.randn(8, 2)

    def step():
        fake = gen(z)
        opt_d.zero_grad()
        d_loss = disc(real).mean() - disc(fake).mean()  # fake not detached
        d_loss.backward()  # FREES-6
        opt_d.step()
        opt_g.zero_grad()
        g_loss = -disc(fake).mean()
        g_loss.backward()  # AGAIN-6
        opt_g.step()
        return g_loss

    result = diagnose(model, step, [opt_g, opt_d])
    assert f"the backward() at {line_of('FREES-6')}" in result.error
    assert f"the backward() at {line_of('AGAIN-6')}" in result.error
    fix = result.error.split("Fix:")[-1]
    assert fix.index("detach()") < fix.index("retain_graph=True")


def test_an_error_that_is_not_about_gradients_says_so():
    model, x, y = helpers.toy_net(), *helpers.toy_batch()

    def step():
        return helpers.toy_loss(model(x.T), y)  # SHAPE-7

    result = diagnose(model, step)
    assert isinstance(result.exception, RuntimeError)
    assert "not a gradient problem" not in result.error  # a RuntimeError of PyTorch's
    assert "Raised at: toy.py:" in result.error  # inside the model's forward,
    assert f"(called from {line_of('SHAPE-7')}" in result.error  # called from the step
    assert set(result.causes.values()) == {"unused"}  # nothing ran before the error


# ---------------------------------------------------------------- bad input


def test_bad_input_gets_a_clear_error():
    model, x, y = helpers.toy_net(), *helpers.toy_batch()
    good = lambda: helpers.toy_loss(model(x), y)  # noqa: E731
    with pytest.raises(TypeError, match="torch.nn.Module"):
        diagnose([model], good)
    with pytest.raises(TypeError, match="no arguments"):
        diagnose(model, lambda batch: helpers.toy_loss(model(batch), y))
    with pytest.raises(TypeError, match="torch.optim.Optimizer"):
        diagnose(model, good, optimizer="sgd")
    with pytest.raises(TypeError, match="must map names to tensors"):
        diagnose(model, good, tensors={"w": 1.0})
    with pytest.raises(ValueError, match="unknown cause"):
        diagnose(model, good).of("broken")


def test_a_step_that_returns_no_loss_or_a_vector_is_refused_and_undone():
    model, x, y = helpers.toy_net(), *helpers.toy_batch()
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    before = state_of(model, [opt])

    def no_return():
        opt.zero_grad()
        helpers.toy_loss(model(x), y).backward()
        opt.step()

    with pytest.raises(TypeError, match="return loss"):
        diagnose(model, no_return, opt)
    assert_same(before, state_of(model, [opt]))
    with pytest.raises(ValueError, match="not a scalar"):
        diagnose(model, lambda: (model(x) - y) ** 2, opt)


# ---------------------------------------------------------------- the views


def test_table_text_html_and_report():
    model, step, opt, tensors, _ = CASES["toy_prior_moved_after_requires_grad"]()
    result = diagnose(model, step, opt, tensors=tensors)
    table = result.table()
    assert table.columns == ["parameter", "shape", "requires_grad", "optimizer", "grad",
                             "grad norm", "moved", "cause", "fix"]
    assert table.column("parameter") == [*helpers.PARAM_NAMES, "prior"]
    assert table.column("cause") == ["ok"] * 4 + ["non_leaf"]
    assert table.column("optimizer") == ["lr 0.1"] * 4 + ["no"]
    assert 'class="gfl-table"' in table._repr_html_() and "non_leaf" in repr(table)
    text = str(result)
    assert text.startswith("1 of 5 parameters will not train")
    assert "non_leaf (1): prior" in text and "0x" not in text
    assert "<b>non_leaf</b>" in result._repr_html_()


def test_draw_folds_a_large_model_to_the_path_of_the_bug(require_tool):
    require_tool("dot")
    blocks = [nn.Sequential(*[nn.Sequential(nn.Linear(4, 4), nn.LayerNorm(4), nn.ReLU())
                              for _ in range(4)]) for _ in range(5)]
    model = nn.Sequential(*blocks, nn.Linear(4, 1))
    assert sum(1 for _ in model.modules()) >= 50
    model[2][1][0].requires_grad_(False)
    x = torch.randn(3, 4)

    def step():
        loss = model(x).pow(2).mean()
        loss.backward()
        return loss

    result = diagnose(model, step)
    diagram = module_diagram(result)
    labels = [n.label for n in diagram.nodes]
    # the root, its 6 children, block 2's 4 children, and 2.1's 2 children: 13 of 87 modules
    assert len(labels) == 13
    assert "2.1.0: Linear\n2 frozen" in labels
    assert "0: Sequential (17 modules)\n16 params: ok" in labels
    assert diagram.legend == ("frozen", "ok")
    assert result.draw().svg.startswith("<svg")


def test_draw_without_dot_shows_an_outline(monkeypatch):
    model, step, opt, _, _ = CASES["toy_dead_relu"]()
    view = diagnose(model, step, opt).draw()
    monkeypatch.setattr(graph, "dot_available", lambda: False)
    assert view.svg is None
    page = view._repr_html_()
    assert "graphviz" in page.lower() and "l1: Linear | 2 zero_grad" in page
    assert "l2: Linear | 1 zero_grad, 1 ok" in repr(view)


def test_helpers_facade_exports_diagnose():
    assert helpers.diagnose is diagnose and "diagnose" in helpers.__all__


def test_bench_section_renders_hand_made_rounds():
    # tools/bench_doctor.py's report, checked against medians and ratios worked out by hand.
    import sys
    from pathlib import Path

    sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tools"))
    import bench_doctor

    rounds = [{"plain": 1.0, "empty mode": 1.5, "diagnose": 2.0},
              {"plain": 2.0, "empty mode": 2.0, "diagnose": 8.0},
              {"plain": 1.0, "empty mode": 1.0, "diagnose": 2.5}]
    cpu = [{"plain": 1.0, "empty mode": 1.0, "diagnose": 2.0},
           {"plain": 1.0, "empty mode": 1.0, "diagnose": 2.0},
           {"plain": 2.0, "empty mode": 2.0, "diagnose": 9.0}]
    results = {"step (x)": {"rounds": 3, "repeats": 5, "per_round": rounds,
                            "cpu_per_round": cpu}}
    lines, budgets, notes = bench_doctor.render(results)
    # plain 1, 2, 1 s: median 1000 ms; diagnose 2, 8, 2.5 s: median 2500 ms; wall ratios 2, 4,
    # 2.5: median 2.5; CPU ratios 2, 2, 4.5: median 2.0; empty mode ratios 1.5, 1, 1: median 1
    assert ("| step (x) | 1000.00 (1000.00–2000.00) | 2500.00 (2000.00–8000.00) | "
            "2.50 (2.00–4.00) | 2.00 (2.00–4.50) | 1.00 (1.00–1.50) |") in "\n".join(lines)
    assert budgets == [("Doctor cost: step", "<= 3 x plain step, CPU time",
                        "2.0 x (wall clock 2.5 x)", True)] and notes == []
    results["step (x)"]["cpu_per_round"] = [{"plain": 1.0, "empty mode": 1.0, "diagnose": 4.0}]
    _, budgets, notes = bench_doctor.render(results)
    assert budgets[0][2:] == ("4.0 x (wall clock 2.5 x)", False)
    assert notes == ["step (x): diagnosing a step costs 4.0 x the plain step in CPU time "
                     "(budget 3 x)."]


def test_places_are_named_without_absolute_paths():
    from helpers.doctor.frames import Place, is_learner_file

    assert Place("/tmp/ipykernel_4242/2771433211.py", 3).where == "cell line 3"
    assert Place("/home/me/project/train.py", 12).where == "train.py:12"
    assert not is_learner_file(torch.nn.functional.__file__)
    assert not is_learner_file(warnings.__file__)
    assert is_learner_file(__file__) and is_learner_file(helpers.toy.__file__)


# ---------------------------------------------------------------- review regressions


def _dense(t):
    return None if t is None else (t.to_dense() if t.is_sparse else t).clone()


@pytest.mark.parametrize("padding", [False, True])
def test_sparse_embedding_gradients_are_diagnosed_and_momentum_restored(padding):
    # nn.Embedding(sparse=True) gives a sparse .grad (the doctor's norms used to crash on it);
    # looking up only the padding row gives it an all-zero gradient (padding_idx gets none).
    torch.manual_seed(0)
    emb = nn.Embedding(5, 3, sparse=True, padding_idx=0)
    opt = torch.optim.SGD(emb.parameters(), lr=0.1, momentum=0.9)
    idx = torch.tensor([0, 0]) if padding else torch.tensor([1, 2])

    def step():
        opt.zero_grad()
        loss = emb(idx).sum()
        loss.backward()
        opt.step()
        return loss

    step()  # a real step first: a sparse momentum buffer exists
    weight, grad = emb.weight.detach().clone(), _dense(emb.weight.grad)
    buffer = _dense(opt.state[emb.weight]["momentum_buffer"])
    plain = copy.deepcopy(emb)
    plain(idx).sum().backward()
    expected = "zero_grad" if padding else "ok"  # the plain run's gradient decides
    assert (_dense(plain.weight.grad).abs().max() == 0) == padding
    result = diagnose(emb, step, opt)
    assert result.causes == {"weight": expected}
    assert torch.equal(emb.weight, weight) and torch.equal(_dense(emb.weight.grad), grad)
    assert torch.equal(_dense(opt.state[emb.weight]["momentum_buffer"]), buffer)


@pytest.mark.parametrize("make", [
    lambda params: torch.optim.SGD(params, lr=0.1, weight_decay=0.1),
    lambda params: torch.optim.AdamW(params, lr=0.1)])
def test_an_unused_layer_whose_grad_was_zeroed_in_place_is_unused(make):
    # zero_grad(set_to_none=False) rewrites the .grad of a layer the step never calls: that is
    # no gradient arriving, so the cause stays `unused` (weight decay still moves the layer)
    model, x, y = helpers.toy_net(), *helpers.toy_batch()
    opt = make(model.parameters())
    helpers.toy_loss(model(x), y).backward()
    opt.step()
    head = nn.Linear(model.l1.out_features, 1)  # a second head that the step does not call
    model.unused_head = head
    head(torch.zeros(1, model.l1.out_features)).sum().backward()
    opt.add_param_group({"params": head.parameters()})

    def step():
        opt.zero_grad(set_to_none=False)
        loss = helpers.toy_loss(model(x), y)  # the toy's forward never calls unused_head
        loss.backward()
        opt.step()
        return loss

    result = diagnose(model, step, opt)
    assert result.causes["unused_head.weight"] == "unused"
    assert result.causes["unused_head.bias"] == "unused"
    assert result.causes["l1.weight"] == "ok"


@pytest.mark.parametrize("build,set_to_none", [("toy", True), ("resnet", True)])
def test_optimizer_step_before_backward_is_not_called_zero_grad_after_backward(build,
                                                                               set_to_none):
    if build == "toy":
        model, (x, y) = helpers.toy_net(), helpers.toy_batch()
        loss_of = lambda: helpers.toy_loss(model(x), y)  # noqa: E731
    else:
        torch.manual_seed(0)
        model, (x, y) = ResNet(), images()
        loss_of = lambda: F.cross_entropy(model(x), y)  # noqa: E731
    opt = torch.optim.SGD(model.parameters(), lr=0.1)

    loss_of().backward()  # grads exist before the step (zero_grad() sets them to None)

    def step():
        opt.zero_grad(set_to_none=set_to_none)
        loss = loss_of()
        opt.step()  # the bug: the step runs before backward() has filled any gradient
        loss.backward()
        return loss

    result = diagnose(model, step, opt)
    # every parameter gets its gradient, but only after step(): in the optimizer, a non-zero
    # gradient, not moved
    assert set(result.causes.values()) == {"not_moved"}
    detail = next(iter(result.params.values())).detail
    assert "before backward()" in detail and "set back to None" not in detail
    assert "between" not in detail


def test_clipping_to_zero_between_backward_and_step_is_named():
    model, x, y = helpers.toy_net(), *helpers.toy_batch()
    opt = torch.optim.SGD(model.parameters(), lr=0.1)

    def step():
        opt.zero_grad()
        loss = helpers.toy_loss(model(x), y)
        loss.backward()
        nn.utils.clip_grad_norm_(model.parameters(), max_norm=0.0)  # scales every grad to 0
        opt.step()
        return loss

    plain = copy.deepcopy(model)
    helpers.toy_loss(plain(x), y).backward()
    had = {n for n, p in plain.named_parameters() if p.grad.abs().max() > 0}
    result = diagnose(model, step, opt)
    assert set(result.causes.values()) == {"zero_grad"}
    for name in had:  # backward gave values; something before step() zeroed them
        assert "between" in result.params[name].detail
        assert "clip_grad_norm_" in result.params[name].fix


def test_a_module_replaced_inside_the_step_is_put_back():
    model, x, y = helpers.toy_net(), *helpers.toy_batch()
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    children = dict(model.named_children())

    def step():
        model.l1 = nn.Linear(model.l1.in_features, model.l1.out_features)  # replaced in the step
        opt.zero_grad()
        loss = helpers.toy_loss(model(x), y)
        loss.backward()
        opt.step()
        return loss

    result = diagnose(model, step, opt)
    assert dict(model.named_children()).keys() == children.keys()
    assert all(model.get_submodule(n) is m for n, m in children.items())
    assert result.causes["l1.weight"] == "unused"  # the original l1 was not called


@pytest.mark.parametrize("overflow", [False, True])
def test_a_grad_scaler_is_put_back_and_its_skipped_step_named(overflow):
    model, x, y = helpers.toy_net(), *helpers.toy_batch()
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    scaler = torch.amp.GradScaler("cpu", init_scale=2.0 ** 16, growth_interval=1)
    factor = 1e38 if overflow else 1.0  # x 2**16 overflows float32: inf gradients

    def step():
        opt.zero_grad()
        loss = helpers.toy_loss(model(x), y) * factor
        scaler.scale(loss).backward()
        scaler.step(opt)  # skips opt.step() when the gradients hold inf
        scaler.update()  # halves the scale after a skip, doubles it after a clean step
        return loss

    result = diagnose(model, step, opt)
    assert scaler.get_scale() == 2.0 ** 16 and scaler._growth_tracker.item() == 0
    if overflow:
        assert set(result.causes.values()) == {"not_moved"}
        assert "GradScaler" in result.params["l1.weight"].detail
    else:
        assert set(result.causes.values()) == {"ok"}
    step()  # the real step changes the scale: the diagnosed one had not
    assert scaler.get_scale() == (2.0 ** 15 if overflow else 2.0 ** 17)


class _Scale(torch.autograd.Function):
    """y = x * w, with w read from a module instead of passed in (the learner's bug)."""

    @staticmethod
    def forward(ctx, x, module):
        return x * module.w

    @staticmethod
    def backward(ctx, grad):
        return grad, None


@pytest.mark.parametrize("apply_in_c", [False, True])
@pytest.mark.parametrize("also_no_grad", [False, True])
def test_a_parameter_read_inside_a_custom_function_forward_is_named(also_no_grad, apply_in_c,
                                                                    monkeypatch):
    if apply_in_c:  # as on torch 2.14, where Function.apply has no Python code object
        from helpers.doctor import recording
        monkeypatch.setattr(recording, "_APPLY", None)
    class Net(nn.Module):
        def __init__(self):
            super().__init__()
            self.w = nn.Parameter(torch.tensor(2.0))
            self.b = nn.Parameter(torch.tensor(0.5))

        def forward(self, x):
            return _Scale.apply(x, self) + self.b

    net, x = Net(), torch.randn(4, requires_grad=True)
    opt = torch.optim.SGD(net.parameters(), lr=0.1)

    def step():
        opt.zero_grad()
        if also_no_grad:
            with torch.no_grad():
                net.w * 3  # a plain no_grad use as well: the detail must not say "only inside"
        loss = net(x).pow(2).mean()
        loss.backward()
        opt.step()
        return loss

    plain = copy.deepcopy(net)
    plain(x).pow(2).mean().backward()
    assert plain.w.grad is None and plain.b.grad is not None  # autograd never sees w
    result = diagnose(net, step, opt)
    assert result.causes == {"w": "no_grad", "b": "ok"}
    detail, fix = result.params["w"].detail, result.params["w"].fix
    if also_no_grad:
        assert "_Scale" not in detail and "no_grad" in fix
    else:
        assert "_Scale.forward" in detail and "_Scale.apply" in fix


# ---------------------------------------------------------------- cheaper bookkeeping


def test_call_kinds_are_cached_across_recorders_and_bounded(monkeypatch):
    from helpers.doctor import recording

    monkeypatch.setattr(recording, "_KINDS", {})
    made = []
    uncached = recording._classify_uncached
    monkeypatch.setattr(recording, "_classify_uncached",
                        lambda func: made.append(func) or uncached(func))
    net, (x, y) = helpers.toy_net(), helpers.toy_batch()
    for _ in range(2):  # a fresh recorder each time, as diagnose makes
        with recording.Recorder(net.parameters()):
            helpers.toy_loss(net(x), y).backward()
    assert made and len(made) == len(set(made))  # each call classified once, not per recorder
    assert recording._classify(torch.relu) == (recording.USE, "relu")
    assert recording._classify(torch.Tensor.dim) == (recording.IGNORE, "dim")
    assert recording._classify(torch.Tensor.backward) == (recording.BACKWARD, "backward")
    monkeypatch.setattr(recording, "MAX_KINDS", len(recording._KINDS))
    assert recording._classify(torch.sigmoid) == (recording.USE, "sigmoid")  # still right,
    assert torch.sigmoid not in recording._KINDS  # but not kept once the cache is full

    class Unhashable:
        __hash__ = None
        __name__ = "size"

        def __call__(self):
            return None

    assert recording._classify(Unhashable()) == (recording.IGNORE, "size")


@pytest.mark.parametrize("values, expected", [
    ([0.0, 0.0], "zeros"), ([0.0, -0.0], "zeros"), ([1e-30, 0.0], "values"),  # 2-norm 0 in fp32
    ([float("nan"), 0.0], "values"), ([float("inf"), 0.0], "values"), ([3.0, 4.0], "values")])
def test_grad_states_from_known_norms_match_the_largest_value_check(values, expected):
    from helpers.doctor.causes import floats, grad_states

    grad = torch.tensor(values)
    assert expected == ("zeros" if not bool((grad != 0).any()) else "values")  # independent
    grads = [grad, None, torch.zeros(0)]
    norms = [None if g is None else n for g, n in
             zip(grads, [floats(torch._foreach_norm([grad]))[0], None, 0.0])]
    assert grad_states(grads, norms) == grad_states(grads) == [expected, "None", "zeros"]
    if values[0] == 1e-30:
        assert norms[0] == 0.0  # the case the fallback exists for: the squares underflow


@pytest.mark.parametrize("before, now", [
    ([1.0, 2.0], [1.0, 2.0]), ([1.0, 2.0], [1.0, 2.5]), ([0.0], [-0.0]),
    ([float("nan")], [float("nan")]), ([float("inf")], [float("inf")]), ([1.0], [float("inf")]),
    ([], [])])
def test_moved_is_the_largest_difference_other_than_zero(before, now):
    from helpers.doctor.run import _moved

    t, saved = torch.tensor(now), torch.tensor(before)
    diff = (t - saved).abs()
    expected = bool(diff.numel()) and not bool((diff == 0).all())  # NaN != 0: a NaN moved
    assert _moved([t], {id(t): saved}) == [expected]


def _numpy_step(draw):
    net, (x, y) = helpers.toy_net(), helpers.toy_batch()

    def step():
        draw()
        loss = helpers.toy_loss(net(x), y)
        loss.backward()
        return loss
    return net, step


def _numpy_states_equal(a, b):
    return a[0] == b[0] and (a[1] == b[1]).all() and a[2:] == b[2:]


@pytest.mark.parametrize("prepare, draw, writes", [
    (lambda np: None, lambda np: None, False),  # untouched: nothing to write back
    (lambda np: None, lambda np: np.random.rand(3), True),
    (lambda np: np.random.randn(1), lambda np: None, True),  # a cached Gaussian: always
    (lambda np: np.random.randn(1), lambda np: np.random.randn(1), True),  # takes the cache
    (lambda np: None, lambda np: np.random.seed(1), True)])
def test_numpy_random_state_is_put_back_and_written_only_when_needed(monkeypatch, prepare,
                                                                      draw, writes):
    np = pytest.importorskip("numpy")
    np.random.seed(0)
    prepare(np)
    before = np.random.get_state()
    written = []
    set_state = np.random.set_state
    monkeypatch.setattr(np.random, "set_state", lambda s: written.append(1) or set_state(s))
    net, step = _numpy_step(lambda: draw(np))
    diagnose(net, step)
    assert _numpy_states_equal(before, np.random.get_state())
    assert bool(written) == writes


def test_numpy_random_state_written_back_when_its_raw_bytes_cannot_be_read(monkeypatch):
    np = pytest.importorskip("numpy")
    from helpers.doctor import snapshot

    np.random.seed(0)
    before = np.random.get_state()
    monkeypatch.setattr(snapshot, "_position_bytes", lambda v: b"\x00" * 5)  # wrong layout
    saved = snapshot.NumpyRandom(np)
    assert saved.raw is None and saved.changed()
    np.random.rand(2)
    saved.restore()
    assert _numpy_states_equal(before, np.random.get_state())
