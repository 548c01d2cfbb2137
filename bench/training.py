"""The one training loop every method shares, and batched evaluation.

The harness owns the optimiser (built from the task profile), the epochs, batching,
the schedule, validation and model selection; a method only supplies its loss, its
parameter groups, its predictor and its epoch hook (see ``bench.api.Method``).
"""
from __future__ import annotations

import contextlib
import copy
import math
from typing import Any, ContextManager, Iterator

import torch

from bench.api import Method, Profile, Split
from bench.errors import NonFiniteError, UserError
from bench.metrics import METRICS

# Validation examples scored after each epoch when no selection reads the scores (no
# ``select_best_val``, no ``patience``): the per-epoch scores are then only a learning
# curve in the record, so a fixed subset draws it at a fraction of the cost, and the
# runner still scores the whole validation split once at the end (``val_metric``).
MONITOR_EXAMPLES = 256


def iterate_batches(split: Split, batch_size: int, shuffle: bool, generator: torch.Generator | None = None
                    ) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
    """Minibatches of a split that already lives on the device (no loader, no PIL)."""
    n = len(split)
    order = torch.randperm(n, generator=generator).to(split.x.device) if shuffle else None
    for start in range(0, n, batch_size):
        if order is None:
            yield split.x[start:start + batch_size], split.y[start:start + batch_size]
        else:
            idx = order[start:start + batch_size]
            yield split.x[idx], split.y[idx]


AMP_DTYPES = {"bf16": torch.bfloat16}


def autocast(device: torch.device, amp: str) -> ContextManager:
    """Mixed precision for ``--amp bf16`` (training steps and predictions), else nothing.

    bf16 keeps float32's exponent range, so no loss scaling is needed. Methods with
    a search phase may wrap their own steps in it (``autocast(ctx.device, ctx.config.amp)``).
    """
    if amp == "none":
        return contextlib.nullcontext()
    if amp not in AMP_DTYPES:
        raise UserError(f"unknown --amp {amp!r}; use none or bf16")
    return torch.autocast(device_type=device.type, dtype=AMP_DTYPES[amp])


def make_optimizer(groups: list[dict[str, Any]], profile: Profile) -> torch.optim.Optimizer:
    """The profile's optimiser; a parameter group may override lr / weight_decay."""
    kw: dict[str, Any] = {"lr": profile.lr, "weight_decay": profile.weight_decay}
    if profile.optimizer == "adam":
        return torch.optim.Adam(groups, **kw)
    if profile.optimizer == "adamw":
        return torch.optim.AdamW(groups, **kw)
    if profile.optimizer == "sgd":
        return torch.optim.SGD(groups, momentum=profile.momentum, nesterov=profile.nesterov, **kw)
    raise UserError(f"unknown optimizer {profile.optimizer!r} in profile; use adam, adamw or sgd")


def make_schedule(optimizer: torch.optim.Optimizer, profile: Profile) -> torch.optim.lr_scheduler.LRScheduler | None:
    if profile.schedule == "none":
        return None
    if profile.schedule == "cosine":
        return torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=max(1, profile.epochs))
    raise UserError(f"unknown schedule {profile.schedule!r} in profile; use none or cosine")


@torch.no_grad()
def predict_split(method: Method, split: Split, batch_size: int) -> torch.Tensor:
    """The method's predictor on a whole split, in eval mode (outputs on the CPU)."""
    was_training = method.training
    method.eval()
    with autocast(method.ctx.device, method.ctx.config.amp):
        outputs = [method.predict(x) for x, _ in iterate_batches(split, batch_size, shuffle=False)]
    method.train(was_training)
    return torch.cat(outputs).float().cpu()


def evaluate_split(method: Method, split: Split, batch_size: int) -> dict[str, float]:
    return method.task.evaluate(predict_split(method, split, batch_size), split.y.cpu(), method.ctx.data.info)


def fit(method: Method, timer: Any, generator: torch.Generator) -> list[dict[str, Any]]:
    """Train ``method`` for the profile's epochs; return the per-epoch history (each
    entry with the optimiser steps taken so far and the learned augmentation then).

    Training steps are timed under the timer's ``train`` phase and validation under
    ``eval``. With ``select_best_val`` the weights (model and augmentation) of the
    best validation epoch are restored at the end; ``patience`` stops early. Without
    either, each epoch is validated on the first ``MONITOR_EXAMPLES`` validation
    examples only (the entry's ``val_n`` says how many).
    """
    ctx = method.ctx
    profile, data = ctx.profile, ctx.data
    metric = METRICS[method.task.metric]
    optimizer = make_optimizer(method.param_groups(), profile)
    schedule = make_schedule(optimizer, profile)
    history: list[dict[str, Any]] = []
    best_value, best_state, since_best = -math.inf, None, 0
    steps = 0  # optimiser steps so far: learned augmentations are plotted against it
    monitor = data.val
    if monitor is not None and not profile.select_best_val and profile.patience is None:
        monitor = Split(monitor.x[:MONITOR_EXAMPLES], monitor.y[:MONITOR_EXAMPLES])
    ctx.progress.start("train", profile.epochs)
    for epoch in range(profile.epochs):
        with timer.phase("train"):
            method.train()
            total = torch.zeros((), device=ctx.device)
            n_batches = 0
            for x, y in iterate_batches(data.train, profile.batch_size, shuffle=profile.shuffle, generator=generator):
                with autocast(ctx.device, ctx.config.amp):  # forward and loss in bf16 under --amp; backward outside, as recommended
                    loss, _ = method.training_loss(x, y)
                optimizer.zero_grad(set_to_none=True)
                loss.backward()
                optimizer.step()
                steps += 1
                total += loss.detach()
                n_batches += 1
            if schedule is not None:
                schedule.step()
            method.end_epoch(epoch)
            train_loss = (total / max(1, n_batches)).item()  # one sync per epoch
        if not math.isfinite(train_loss):
            raise NonFiniteError(f"training loss is {train_loss} in epoch {epoch}")
        entry: dict[str, Any] = {"epoch": epoch, "step": steps, "train_loss": train_loss}
        if monitor is not None:
            with timer.phase("eval"):
                val = evaluate_split(method, monitor, profile.eval_batch_size)
            entry["val"], entry["val_n"] = val, len(monitor)
            value = val[method.task.metric] * (1 if metric.higher_is_better else -1)
            if value > best_value:
                best_value, since_best = value, 0
                if profile.select_best_val:
                    best_state = copy.deepcopy(method.state_dict())
            else:
                since_best += 1
        augmentation = method.learned_augmentation()
        if augmentation is not None:
            entry["augmentation"] = augmentation
        history.append(entry)
        ctx.progress.step(loss=f"{train_loss:.3g}", **({"val": f"{entry['val'][method.task.metric]:.3g}"} if "val" in entry else {}))
        if profile.patience is not None and since_best > profile.patience:
            break
    ctx.progress.close()
    if best_state is not None:
        method.load_state_dict(best_state)
    return history
