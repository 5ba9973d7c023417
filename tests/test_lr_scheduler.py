"""genesis.optim.lr_scheduler: each scheduler's learning-rate sequence against one
computed here from the schedule's definition, and against PyTorch's when torch
is installed; checkpoints resume the same sequence; bad arguments raise."""
import math
import warnings
from bisect import bisect_right

import numpy as np
import pytest

import genesis
import genesis.optim as optim
from genesis.optim import lr_scheduler as S

EPOCHS = 30
BASE_LRS = [0.1, 0.05]


def make_sgd(lib=None, momentum=0.9):
    """SGD with two parameter groups (lr 0.1 and 0.05), from genesis or torch."""
    if lib is None:
        params = [genesis.zeros(2, requires_grad=True), genesis.zeros(3, requires_grad=True)]
        return optim.SGD([{"params": [params[0]]}, {"params": [params[1]], "lr": BASE_LRS[1]}],
                         lr=BASE_LRS[0], momentum=momentum)
    params = [lib.zeros(2, requires_grad=True), lib.zeros(3, requires_grad=True)]
    return lib.optim.SGD([{"params": [params[0]]}, {"params": [params[1]], "lr": BASE_LRS[1]}],
                         lr=BASE_LRS[0], momentum=momentum)


def make_adam(lib=None):
    if lib is None:
        return optim.Adam([genesis.zeros(2, requires_grad=True)], lr=0.01, betas=(0.9, 0.99))
    return lib.optim.Adam([lib.zeros(2, requires_grad=True)], lr=0.01, betas=(0.9, 0.99))


def lr_sequence(opt, scheduler, epochs=EPOCHS, metrics=None):
    """get_last_lr() after construction and after each of `epochs` steps."""
    seq = [list(scheduler.get_last_lr())]
    for e in range(epochs):
        opt.step()
        if metrics is None:
            scheduler.step()
        else:
            scheduler.step(metrics[e])
        seq.append(list(scheduler.get_last_lr()))
        assert seq[-1] == [g["lr"] for g in opt.param_groups]
    return np.array(seq)


def closed(fn, epochs=EPOCHS):
    return np.array([[fn(base, e) for base in BASE_LRS] for e in range(epochs + 1)])


def cosine(base, e, T, eta_min):
    return eta_min + (base - eta_min) * (1 + math.cos(math.pi * e / T)) / 2


SCHEDULES = {
    "StepLR": (lambda o: S.StepLR(o, step_size=4, gamma=0.5),
               lambda b, e: b * 0.5 ** (e // 4)),
    "MultiStepLR": (lambda o: S.MultiStepLR(o, milestones=[3, 7, 7, 20], gamma=0.1),
                    lambda b, e: b * 0.1 ** bisect_right([3, 7, 7, 20], e)),
    "ExponentialLR": (lambda o: S.ExponentialLR(o, gamma=0.9), lambda b, e: b * 0.9 ** e),
    "CosineAnnealingLR": (lambda o: S.CosineAnnealingLR(o, T_max=8, eta_min=1e-3),
                          lambda b, e: cosine(b, e, 8, 1e-3)),
    "LambdaLR": (lambda o: S.LambdaLR(o, lr_lambda=lambda e: 1 / (1 + e)),
                 lambda b, e: b / (1 + e)),
    "LinearLR": (lambda o: S.LinearLR(o, start_factor=0.25, end_factor=0.75, total_iters=6),
                 lambda b, e: b * (0.25 + 0.5 * min(e, 6) / 6)),
}

TORCH_SCHEDULES = {
    "StepLR": dict(step_size=4, gamma=0.5),
    "MultiStepLR": dict(milestones=[3, 7, 7, 20], gamma=0.1),
    "ExponentialLR": dict(gamma=0.9),
    "CosineAnnealingLR": dict(T_max=8, eta_min=1e-3),
    "LinearLR": dict(start_factor=0.25, end_factor=0.75, total_iters=6),
}


@pytest.mark.parametrize("name", sorted(SCHEDULES))
def test_sequence_matches_definition(name):
    make, formula = SCHEDULES[name]
    opt = make_sgd()
    seq = lr_sequence(opt, make(opt))
    np.testing.assert_allclose(seq, closed(formula), rtol=1e-10)
    assert [g["initial_lr"] for g in opt.param_groups] == BASE_LRS


@pytest.mark.parametrize("name", sorted(TORCH_SCHEDULES))
def test_sequence_matches_torch(name):
    torch = pytest.importorskip("torch")
    kwargs = TORCH_SCHEDULES[name]
    opt, topt = make_sgd(), make_sgd(torch)
    ours = lr_sequence(opt, getattr(S, name)(opt, **kwargs))
    theirs = lr_sequence(topt, getattr(torch.optim.lr_scheduler, name)(topt, **kwargs))
    np.testing.assert_allclose(ours, theirs, rtol=1e-14)


def test_lambda_lr_one_function_per_group_and_torch():
    fns = [lambda e: 0.95 ** e, lambda e: e // 3 + 1]
    opt = make_sgd()
    seq = lr_sequence(opt, S.LambdaLR(opt, lr_lambda=fns))
    want = np.array([[0.1 * 0.95 ** e, 0.05 * (e // 3 + 1)] for e in range(EPOCHS + 1)])
    np.testing.assert_allclose(seq, want, rtol=1e-12)
    torch = pytest.importorskip("torch")
    topt = make_sgd(torch)
    theirs = lr_sequence(topt, torch.optim.lr_scheduler.LambdaLR(topt, lr_lambda=fns))
    np.testing.assert_allclose(seq, theirs, rtol=1e-14)


def test_cosine_annealing_beyond_t_max_and_resume_with_last_epoch():
    opt = make_sgd()
    seq = lr_sequence(opt, S.CosineAnnealingLR(opt, T_max=5), epochs=23)
    np.testing.assert_allclose(seq, closed(lambda b, e: cosine(b, e, 5, 0.0), 23), atol=1e-15)
    # resuming with last_epoch keeps the current lr and continues from that epoch
    before = [g["lr"] for g in opt.param_groups]
    resumed = S.CosineAnnealingLR(opt, T_max=5, last_epoch=10)
    assert resumed.get_last_lr() == before and resumed.last_epoch == 11


def test_deprecated_epoch_argument_uses_closed_form():
    opt = make_sgd()
    sched = S.StepLR(opt, step_size=3, gamma=0.5)
    with pytest.warns(UserWarning, match="epoch parameter in `scheduler.step\\(\\)`"):
        sched.step(7)
    assert sched.last_epoch == 7 and sched.get_last_lr() == [0.1 * 0.25, 0.05 * 0.25]


# ----------------------------------------------------------------- OneCycleLR
def one_cycle_reference(total, max_lr, pct, div, final_div, three_phase, strategy, t,
                        base_m=0.85, max_m=0.95):
    """lr and momentum at step t of the 1cycle policy, from its definition."""
    initial, minimum = max_lr / div, max_lr / div / final_div
    if strategy == "cos":
        def anneal(a, b, x):
            return b + (a - b) / 2 * (1 + math.cos(math.pi * x))
    else:
        def anneal(a, b, x):
            return a + (b - a) * x
    up = pct * total - 1
    if three_phase:
        phases = [(up, initial, max_lr, max_m, base_m), (2 * pct * total - 2, max_lr, initial,
                                                           base_m, max_m),
                  (total - 1, initial, minimum, max_m, max_m)]
    else:
        phases = [(up, initial, max_lr, max_m, base_m), (total - 1, max_lr, minimum, base_m,
                                                           max_m)]
    start = 0.0
    for i, (end, lr0, lr1, m0, m1) in enumerate(phases):
        if t <= end or i == len(phases) - 1:
            x = (t - start) / (end - start)
            return anneal(lr0, lr1, x), anneal(m0, m1, x)
        start = end


@pytest.mark.parametrize("three_phase", [False, True])
@pytest.mark.parametrize("strategy", ["cos", "linear"])
def test_one_cycle_lr_and_momentum(three_phase, strategy):
    total = 25
    opt = make_sgd()
    sched = S.OneCycleLR(opt, max_lr=[1.0, 0.5], total_steps=total, pct_start=0.3,
                         anneal_strategy=strategy, three_phase=three_phase, div_factor=10.0,
                         final_div_factor=100.0)
    got_lr, got_m = [], []
    for t in range(total):
        got_lr.append([g["lr"] for g in opt.param_groups])
        got_m.append([g["momentum"] for g in opt.param_groups])
        opt.step()
        if t < total - 1:
            sched.step()
    want = [[one_cycle_reference(total, peak, 0.3, 10.0, 100.0, three_phase, strategy, t)
             for peak in (1.0, 0.5)] for t in range(total)]
    np.testing.assert_allclose(got_lr, [[w[0] for w in row] for row in want], rtol=1e-12)
    np.testing.assert_allclose(got_m, [[w[1] for w in row] for row in want], rtol=1e-12)
    assert opt.param_groups[0]["max_lr"] == 1.0 and opt.param_groups[1]["initial_lr"] == 0.05


@pytest.mark.parametrize("three_phase", [False, True])
def test_one_cycle_matches_torch_with_adam_betas(three_phase):
    torch = pytest.importorskip("torch")
    kwargs = dict(max_lr=0.1, epochs=3, steps_per_epoch=7, three_phase=three_phase,
                  anneal_strategy="linear" if three_phase else "cos")
    runs = []
    for opt, lib_s in ((make_adam(), S), (make_adam(torch), torch.optim.lr_scheduler)):
        sched = lib_s.OneCycleLR(opt, **kwargs)
        seq = []
        for _ in range(20):
            opt.step()
            sched.step()
            seq.append((opt.param_groups[0]["lr"], *opt.param_groups[0]["betas"]))
        runs.append(seq)
    np.testing.assert_allclose(runs[0], runs[1], rtol=1e-14)
    assert runs[0][-1][2] == 0.99  # beta2 is left alone


def test_one_cycle_without_momentum_cycling_and_errors():
    opt = optim.Adagrad([genesis.zeros(2, requires_grad=True)])
    with pytest.raises(ValueError, match="optimizer must support momentum or beta1"):
        S.OneCycleLR(opt, max_lr=0.1, total_steps=10)
    sched = S.OneCycleLR(opt, max_lr=0.1, total_steps=3, cycle_momentum=False)
    for _ in range(3):
        sched.step()
    with pytest.raises(ValueError, match="Tried to step 4 times. The specified number of total "
                                         "steps is 3"):
        sched.step()
    with pytest.raises(ValueError, match="You must define either total_steps OR"):
        S.OneCycleLR(make_sgd(), max_lr=0.1)
    with pytest.raises(ValueError, match="Expected positive integer total_steps"):
        S.OneCycleLR(make_sgd(), max_lr=0.1, total_steps=0)
    with pytest.raises(ValueError, match="Expected float between 0 and 1 pct_start"):
        S.OneCycleLR(make_sgd(), max_lr=0.1, total_steps=10, pct_start=1.5)
    with pytest.raises(ValueError, match="anneal_strategy must be one of 'cos' or 'linear'"):
        S.OneCycleLR(make_sgd(), max_lr=0.1, total_steps=10, anneal_strategy="exp")
    with pytest.raises(ValueError, match="max_lr must have the same length as "
                                         "optimizer.param_groups"):
        S.OneCycleLR(make_sgd(), max_lr=[0.1], total_steps=10)


# ----------------------------------------------------------------- ReduceLROnPlateau
def test_reduce_on_plateau_min_rel():
    opt = make_sgd()
    sched = S.ReduceLROnPlateau(opt, factor=0.5, patience=2)
    metrics = [1.0, 0.9, 0.9, 0.9, 0.9, 0.8, 0.8, 0.8, 0.79999, 0.8]
    seq = lr_sequence(opt, sched, len(metrics), metrics)
    # bad epochs: 0.9 x3 -> the third exceeds patience 2 at epoch 5 (index 4);
    # 0.79999 is not better than 0.8 by the relative threshold 1e-4.
    want = [1, 1, 1, 1, 1, 0.5, 0.5, 0.5, 0.5, 0.25, 0.25]
    np.testing.assert_allclose(seq, np.outer(want, BASE_LRS), rtol=1e-15)
    assert sched.best == 0.8 and sched.num_bad_epochs == 1


def test_reduce_on_plateau_max_abs_cooldown_min_lr_eps():
    opt = make_sgd()
    sched = S.ReduceLROnPlateau(opt, mode="max", factor=0.1, patience=0, threshold=0.5,
                                threshold_mode="abs", cooldown=2, min_lr=[0.002, 0.0], eps=1e-4)
    metrics = [1.0, 1.2, 1.6, 1.7, 1.8, 1.9, 3.0, 3.1, 3.2, 3.3, 3.35]
    seq = lr_sequence(opt, sched, len(metrics), metrics)
    # Improving needs +0.5 over the best; with patience 0 every bad epoch outside the
    # 2-epoch cooldown reduces.  Group 0 stops at its min_lr 0.002; group 1's last
    # reduction (5e-5 -> 5e-6) changes it by less than eps and is skipped.
    want = [[0.1, 0.05], [0.1, 0.05], [0.01, 0.005], [0.01, 0.005], [0.01, 0.005],
            [0.002, 5e-4], [0.002, 5e-4], [0.002, 5e-4], [0.002, 5e-5], [0.002, 5e-5],
            [0.002, 5e-5], [0.002, 5e-5]]
    np.testing.assert_allclose(seq, want, rtol=1e-12)


def test_reduce_on_plateau_matches_torch():
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(0)
    metrics = list(np.cumsum(rng.standard_normal(60)) * 0.1 + 5)
    kwargs = dict(mode="min", factor=0.3, patience=3, threshold=0.01, cooldown=1, min_lr=1e-4)
    opt, topt = make_sgd(), make_sgd(torch)
    ours = lr_sequence(opt, S.ReduceLROnPlateau(opt, **kwargs), 60, metrics)
    theirs = lr_sequence(topt, torch.optim.lr_scheduler.ReduceLROnPlateau(topt, **kwargs), 60,
                         metrics)
    np.testing.assert_array_equal(ours, theirs)


def test_reduce_on_plateau_accepts_tensor_metric_and_errors():
    opt = make_sgd()
    sched = S.ReduceLROnPlateau(opt, patience=0)
    sched.step(genesis.tensor(1.0))
    sched.step(genesis.tensor(2.0))
    assert sched.get_last_lr() == [0.1 * 0.1, 0.05 * 0.1]
    with pytest.raises(ValueError, match="Factor should be < 1.0"):
        S.ReduceLROnPlateau(opt, factor=1.0)
    with pytest.raises(ValueError, match="mode avg is unknown"):
        S.ReduceLROnPlateau(opt, mode="avg")
    with pytest.raises(ValueError, match="threshold mode pct is unknown"):
        S.ReduceLROnPlateau(opt, threshold_mode="pct")
    with pytest.raises(ValueError, match="expected 2 min_lrs, got 1"):
        S.ReduceLROnPlateau(opt, min_lr=[0.1])


# ----------------------------------------------------------------- checkpoints and errors
def _is_plain(value):
    if isinstance(value, dict):
        return all(_is_plain(v) for v in value.values())
    if isinstance(value, list):
        return all(_is_plain(v) for v in value)
    return value is None or isinstance(value, (bool, int, float, str, genesis.Tensor))


class Warmup:
    """A callable object: LambdaLR saves its attributes."""

    def __init__(self, steps):
        self.steps = steps

    def __call__(self, e):
        return min(1.0, (e + 1) / self.steps)


RESUMABLE = {
    "StepLR": lambda o: S.StepLR(o, step_size=3, gamma=0.5),
    "MultiStepLR": lambda o: S.MultiStepLR(o, milestones=[2, 5, 5], gamma=0.5),
    "ExponentialLR": lambda o: S.ExponentialLR(o, gamma=0.8),
    "CosineAnnealingLR": lambda o: S.CosineAnnealingLR(o, T_max=6, eta_min=0.01),
    "LambdaLR": lambda o: S.LambdaLR(o, [Warmup(4), lambda e: 0.9 ** e]),
    "LinearLR": lambda o: S.LinearLR(o, start_factor=0.5, total_iters=7),
    "OneCycleLR": lambda o: S.OneCycleLR(o, max_lr=0.3, total_steps=30, three_phase=True),
    "ReduceLROnPlateau": lambda o: S.ReduceLROnPlateau(o, patience=1, cooldown=1),
}


@pytest.mark.parametrize("name", sorted(RESUMABLE))
def test_state_dict_resumes_the_same_sequence(name):
    metrics = [1.0 / (1 + (e % 4)) for e in range(20)] if name == "ReduceLROnPlateau" else None
    opt = make_sgd()
    full = lr_sequence(opt, RESUMABLE[name](opt), 20, metrics)

    opt = make_sgd()
    sched = RESUMABLE[name](opt)
    first = lr_sequence(opt, sched, 8, metrics)
    saved_opt, saved_sched = opt.state_dict(), sched.state_dict()
    assert _is_plain(saved_sched) and "optimizer" not in saved_sched

    opt2 = make_sgd()
    sched2 = RESUMABLE[name](opt2)  # build first, then load (the order PyTorch documents)
    opt2.load_state_dict(saved_opt)
    sched2.load_state_dict(saved_sched)
    rest = lr_sequence(opt2, sched2, 12, metrics[8:] if metrics else None)
    np.testing.assert_array_equal(np.vstack([first, rest[1:]]), full)


def test_checkpoint_through_genesis_save(tmp_path):
    metrics = [1.0, 0.5, 0.6, 0.7, 0.8, 0.9, 0.4, 0.45, 0.5, 0.55]
    makers = [lambda o: S.MultiStepLR(o, milestones=[2, 6, 6], gamma=0.5),
              lambda o: S.OneCycleLR(o, max_lr=0.5, total_steps=12),
              lambda o: S.ReduceLROnPlateau(o, patience=1, mode="min")]
    for make in makers:
        plateau = make is makers[2]
        opt = make_sgd()
        full = lr_sequence(opt, make(opt), 10, metrics if plateau else None)
        opt = make_sgd()
        sched = make(opt)
        first = lr_sequence(opt, sched, 4, metrics if plateau else None)
        genesis.save({"optimizer": opt.state_dict(), "scheduler": sched.state_dict()},
                     tmp_path / "ckpt")
        ckpt = genesis.load(tmp_path / "ckpt")
        opt2 = make_sgd()
        sched2 = make(opt2)
        opt2.load_state_dict(ckpt["optimizer"])
        sched2.load_state_dict(ckpt["scheduler"])
        rest = lr_sequence(opt2, sched2, 6, metrics[4:] if plateau else None)
        np.testing.assert_array_equal(np.vstack([first, rest[1:]]), full)


def test_lambda_lr_state_dict_keeps_callable_objects_only():
    opt = make_sgd()
    warm = Warmup(4)
    sched = S.LambdaLR(opt, [warm, lambda e: 1.0])
    saved = sched.state_dict()
    assert saved["lr_lambdas"] == [{"steps": 4}, None]
    warm.steps = 10
    sched.load_state_dict(saved)
    assert warm.steps == 4


def test_scheduler_errors():
    with pytest.raises(TypeError, match="list is not an Optimizer"):
        S.StepLR([], step_size=2)
    opt = make_sgd()
    with pytest.raises(KeyError, match=r"'initial_lr' is not specified in param_groups\[0\]"):
        S.StepLR(opt, step_size=2, last_epoch=3)
    with pytest.raises(ValueError, match="Starting multiplicative factor expected to be greater "
                                         "than 0"):
        S.LinearLR(opt, start_factor=0)
    with pytest.raises(ValueError, match="Ending multiplicative factor expected to be between"):
        S.LinearLR(opt, end_factor=1.5)
    with pytest.raises(ValueError, match="Expected 2 lr_lambdas, but got 1"):
        S.LambdaLR(opt, [lambda e: 1.0])


def test_no_warnings_in_ordinary_use():
    opt = make_sgd()
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        lr_sequence(opt, S.CosineAnnealingLR(opt, T_max=4), 6)
