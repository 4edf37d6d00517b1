"""``imx500-sam distill``: train PicoSAM3 from a SAM teacher (and ground truth where it exists).

The PicoSAM3 recipe (arXiv 2603.11917): prompt-style crops; teacher soft masks computed once per image
and cached; loss (``--loss``, ``imx500_sam.train.losses``) = MSE + Dice against the teacher (weighted by its
confidence) + BCE + Dice against ground truth, or the authors' sharpened variant; AdamW with a cosine
schedule. Inputs: a COCO instance file + images, and/or a folder of unlabelled photos (boxes from the
teacher's automatic masks), and optional cut-and-paste composites.

Runs on CPU; under ``torchrun --nproc_per_node N`` it trains with DDP (NCCL on GPUs, gloo on CPU),
each rank drawing its own samples; rank 0 computes teacher targets first, writes checkpoints and logs.
``--workers N`` draws each rank's batches in N processes (``imx500_sam.train.loader``): on a GPU the crops, not
the training steps, take the time.
Every epoch ends with a checkpoint (``last.pt``: model + optimizer + schedule, for ``--resume``;
``picosam3.pt``: the float weights alone, a plain state_dict in the authors' published PicoSAM3 layout, with the
toolkit's metadata in ``picosam3.json`` beside it). Checkpoints load with ``torch.load(weights_only=True)``.
On SIGTERM or Ctrl-C (a scheduler preempting the job) the step in progress completes and ``last.pt`` records
that step; ``--resume`` continues from it with the same samples an uninterrupted run would draw, to the
planned number of steps.

A teacher may also be a network that sees the same crops as the student (``--teacher net:CKPT``, any checkpoint
``load_checkpoint`` reads, e.g. an imx500-sam 0.1 model being moved to the published layout): its soft masks are
computed on each batch, so it needs no photo targets.
"""

from __future__ import annotations

import contextlib
import functools
import json
import math
import os
import shutil
import sys
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

from imx500_sam.data.roles import records_to_json
from imx500_sam.errors import BadInputError
from imx500_sam.procs import (
    STOP_EXCEPTIONS,
    activity,
    deferred_stop,
    note_stop,
    pending_signal,
    stop_as_if_signalled,
    take_pending,
)
from imx500_sam.train.training_data import NET_TEACHER, build_samplers

LAST = "last.pt"
FINAL = "picosam3.pt"
HISTORY = "history.json"
SNAPSHOTS = "epochs"  # --keep-every: epochs/epoch_NNN.pt (+ .json), float weights kept for a learning curve


@dataclass
class DistillOptions:
    """Everything ``distill`` needs; paths may be None where a source is not used."""

    out: Path
    coco: Path | None = None
    images: Path | None = None
    photos: Path | None = None  # folder of unlabelled photos, or None
    default_photos: bool = False  # the project's real photos (imx500_sam.data.sources.fetch_photos)
    max_photos: int | None = None  # use only the first N photos for teacher targets (sorted by name)
    more_photos: bool = False  # + the wheels' train photos (the registry's; the others have other roles)
    cutouts: Path | None = None  # folder of RGBA cut-outs for cut-and-paste
    default_cutouts: bool = False  # tuxpaint photo stamps (imx500_sam.data.sources.fetch_cutouts)
    paste_frac: float = 0.5
    scene_frac: float = 0.0  # share of crops from crowded composite scenes (train cut-outs on train photos)
    teacher: str = "mobilesam"
    loss: str = "ours"  # imx500_sam.train.losses.LOSSES: ours | picosam3 (the authors' objective)
    points_per_side: int = 8
    epochs: int = 10
    steps_per_epoch: int = 200
    batch: int = 32
    lr: float = 2e-3
    weight_decay: float = 1e-4
    warmup_steps: int = 50
    jitter: float = 0.05
    low_res: int | None = None  # train the first ``low_res_epochs`` epochs on crops of this size (cheaper)
    low_res_epochs: int = 0
    seed: int = 0
    init: Path | None = None  # start from these weights (.pt of any known layout, or a float ONNX)
    crop: str | None = None  # crop convention (imx500_sam.prompt); None: the --init model's, else shifted
    resume: bool = False
    overwrite: bool = False  # retrain over an existing run (its last.pt, picosam3.pt, history.json are removed)
    threads: int | None = None
    bf16: bool = False  # bfloat16 autocast for forward passes (CPU AVX512-BF16/AMX, GPUs)
    channels_last: bool = True  # NHWC memory layout (same arithmetic, faster convolutions on CPU)
    workers: int = 0  # processes drawing batches (imx500_sam.train.loader); 0: in the training process
    max_steps: int | None = None  # stop after this many steps in this run (tests; the schedule is unchanged)
    keep_every: int | None = None  # also keep every Nth epoch's weights as epochs/epoch_NNN.pt
    quiet: bool = False
    log_every: int = 20


@dataclass
class DistillResult:
    """What a run produced."""

    checkpoint: Path
    last: Path
    history: list[dict] = field(default_factory=list)


def _dist() -> tuple[int, int, int]:
    """(rank, world_size, local_rank) from torchrun's environment."""
    return int(os.environ.get("RANK", 0)), int(os.environ.get("WORLD_SIZE", 1)), int(os.environ.get("LOCAL_RANK", 0))


def _any_rank_stopping(device: object) -> int | None:
    """All ranks agree after each step: the signal one of them got (SIGINT 2, SIGTERM 15, SIGHUP 1), or None.

    A rank told to stop alone would leave the others waiting in the next step's all-reduce forever.
    """
    import torch
    import torch.distributed as dist

    flag = torch.tensor([pending_signal() or 0], dtype=torch.int64, device=device)
    dist.all_reduce(flag, op=dist.ReduceOp.MAX)
    return int(flag.item()) or None


def _check_run_dir(out: Path, opts: DistillOptions, remove: bool) -> None:
    """An existing run is continued (--resume) or replaced (--overwrite: its run files go), never trained over."""
    from imx500_sam.model.checkpoint import sidecar_path
    from imx500_sam.outputs import refuse_existing

    if opts.resume and opts.overwrite:
        raise BadInputError("--resume and --overwrite: choose one (continue the run, or start it again).")
    if out.exists() and not out.is_dir():
        raise BadInputError(f"-o {out}: exists and is not a folder.", hint="Choose another -o RUN.")
    if opts.resume or not out.is_dir() or not any(out.iterdir()):
        return
    refuse_existing(out, option="-o RUN", overwrite=opts.overwrite, also="--resume to continue it")
    if remove:
        for name in (LAST, FINAL, sidecar_path(Path(FINAL)).name, HISTORY):
            (out / name).unlink(missing_ok=True)
        shutil.rmtree(out / SNAPSHOTS, ignore_errors=True)


def _save_state(path: Path, **state: object) -> None:
    """Atomically write a resumable training state (tensors, numbers and strings: weights_only-loadable)."""
    import torch

    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    torch.save(state, tmp)
    tmp.replace(path)


def bf16_notice(device_type: str, native: bool | None = None) -> str | None:
    """A warning for ``--bf16`` where bfloat16 is emulated (a CPU without AVX512-BF16 or AMX): far slower there."""
    if device_type != "cpu":
        return None
    if native is None:
        import torch

        native = bool(torch.ops.mkldnn._is_mkldnn_bf16_supported())
    if native:
        return None
    return (
        "--bf16: this CPU has no native bfloat16 (AVX512-BF16 or AMX), so autocast is emulated and training is "
        "several times slower than float32 (benchmarks/distill_throughput.py measures it): drop --bf16 here"
    )


def snapshot_path(out: Path, epoch: int) -> Path:
    """Where ``--keep-every`` keeps epoch ``epoch``'s weights."""
    return Path(out) / SNAPSHOTS / f"epoch_{epoch:03d}.pt"


def _keep_snapshot(out: Path, final_path: Path, epoch: int) -> None:
    """Copy this epoch's checkpoint and sidecar to epochs/ (atomically: a stop never leaves half a file)."""
    from imx500_sam.model.checkpoint import sidecar_path

    dest = snapshot_path(out, epoch)
    dest.parent.mkdir(exist_ok=True)
    for src, dst in ((sidecar_path(final_path), sidecar_path(dest)), (final_path, dest)):
        tmp = dst.with_name(f".{dst.name}.tmp-{os.getpid()}")
        shutil.copyfile(src, tmp)
        tmp.replace(dst)


def _lr_lambda(total: int, warmup: int) -> Callable[[int], float]:
    def f(step: int) -> float:
        if step < warmup:
            return (step + 1) / warmup
        t = min(1.0, (step - warmup) / max(1, total - warmup))
        return 0.02 + 0.98 * 0.5 * (1 + math.cos(math.pi * t))

    return f


class _Bar:
    """A rich progress bar (loss, crops/s) on an interactive stderr; inactive otherwise (log lines instead)."""

    def __init__(self, total: int, done: int, enabled: bool) -> None:
        self.active = enabled and sys.stderr.isatty()
        if self.active:
            from rich.console import Console
            from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

            self.progress = Progress(
                TextColumn("{task.description}"),
                BarColumn(),
                MofNCompleteColumn(),
                TimeRemainingColumn(),
                console=Console(file=sys.stderr),
            )
            self.progress.start()
            self.task = self.progress.add_task("distill", total=total, completed=done)

    def advance(self, description: str) -> None:
        """One step done."""
        self.progress.update(self.task, advance=1, description=description)

    def close(self) -> None:
        """Stop drawing."""
        if self.active:
            self.progress.stop()


def run_distill(opts: DistillOptions) -> DistillResult:
    """Train; returns the final checkpoint path. Resumable at any step (see the module docstring)."""
    import torch
    import torch.distributed as dist

    from imx500_sam.model import (
        PicoSAM3,
        SensorInput,
        bare_network,
        load_checkpoint,
        prompt_crop_of,
        read_checkpoint,
        save_checkpoint,
    )
    from imx500_sam.model.legacy import LegacyPicoSAM3, to_published
    from imx500_sam.prompt import SHIFTED, crop_option
    from imx500_sam.train.loader import EpochPlan, epoch_batches
    from imx500_sam.train.losses import loss_by_name

    try:
        loss_fn = loss_by_name(opts.loss)
    except ValueError as exc:
        raise BadInputError(f"--loss: {exc}.", hint="Use --loss ours or --loss picosam3.") from None
    rank, world, local_rank = _dist()
    _check_run_dir(Path(opts.out), opts, remove=rank == 0)
    distributed = world > 1
    use_cuda = torch.cuda.is_available()
    device = torch.device(f"cuda:{local_rank}" if use_cuda else "cpu")
    owns_group = distributed and not dist.is_initialized()
    if owns_group:
        dist.init_process_group(backend="nccl" if use_cuda else "gloo")
    if opts.threads:
        torch.set_num_threads(opts.threads)
    is_main = rank == 0

    def log(text: str) -> None:
        if is_main and not opts.quiet:
            print(text, file=sys.stderr, flush=True)

    if opts.bf16 and (notice := bf16_notice(device.type)) and is_main:
        print(f"warning: {notice}", file=sys.stderr, flush=True)

    out = Path(opts.out)
    if is_main:
        out.mkdir(parents=True, exist_ok=True)
    last_path, final_path = out / LAST, out / FINAL

    init = read_checkpoint(opts.init) if opts.init else None
    crop = crop_option(opts.crop) or (prompt_crop_of(init) if init is not None else SHIFTED)
    log(f"training crops: {crop} (imx500_sam.prompt)")
    if init is not None and init.file_info.get("onnx_batchnorm_folded"):
        log(f"{opts.init}: BatchNorms folded into the convolutions in this ONNX; training re-learns their statistics")
    # Teacher targets: rank 0 computes and caches them, the others then read the cache.
    if distributed and not is_main:
        dist.barrier()
    with activity("teacher targets"):
        data = build_samplers(opts, log, crop)
        samplers = data.samplers
        data_json = {"training": records_to_json(data.training), "selection": records_to_json(data.selection)}
    if distributed and is_main:
        dist.barrier()

    torch.manual_seed(opts.seed)
    model = init.module if init is not None else SensorInput(PicoSAM3())
    if isinstance(model, LegacyPicoSAM3):
        log(f"{opts.init}: imx500-sam 0.1 layout, moved to the published PicoSAM3 layout (approximately)")
        model = to_published(model)
    teacher_net = None
    if opts.teacher.startswith(NET_TEACHER):
        teacher_net = load_checkpoint(opts.teacher[len(NET_TEACHER) :]).to(device).eval()
        for p in teacher_net.parameters():
            p.requires_grad_(False)
    model.to(device).train()
    if opts.channels_last:  # benchmarks/results/distill_throughput.json: 1.8x on the 2-core CPU, 4.3x with --bf16
        model.to(memory_format=torch.channels_last)
        if teacher_net is not None:
            teacher_net.to(memory_format=torch.channels_last)
    autocast = functools.partial(torch.autocast, device.type, dtype=torch.bfloat16, enabled=opts.bf16)
    decay = [p for n, p in model.named_parameters() if p.ndim > 1]
    no_decay = [p for n, p in model.named_parameters() if p.ndim <= 1]
    optimizer = torch.optim.AdamW(
        [{"params": decay, "weight_decay": opts.weight_decay}, {"params": no_decay, "weight_decay": 0.0}],
        lr=opts.lr,
    )
    total_steps = opts.epochs * opts.steps_per_epoch
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, _lr_lambda(total_steps, opts.warmup_steps))
    start_epoch, start_step, partial, history = 0, 0, {}, []
    if opts.resume and last_path.is_file():
        state = torch.load(last_path, map_location="cpu", weights_only=True)
        bare_network(model).load_state_dict(state["model"])
        optimizer.load_state_dict(state["optimizer"])
        scheduler.load_state_dict(state["scheduler"])
        start_epoch, start_step = int(state["epoch"]), int(state.get("step", 0))
        partial = json.loads(state.get("partial_json", "{}"))  # the interrupted epoch's running sums
        history = json.loads(state.get("history_json", "[]"))
        where = f"at epoch {start_epoch + 1} step {start_step}" if start_step else f"after epoch {start_epoch}"
        log(f"resumed from {last_path} {where}")
    elif opts.resume:
        log(f"no {last_path} yet: starting from scratch")
    net = model
    if distributed:
        net = torch.nn.parallel.DistributedDataParallel(model, device_ids=[local_rank] if use_cuda else None)

    steps_done = 0
    per_rank_batch = max(1, opts.batch // world)
    bar = _Bar(
        opts.epochs * opts.steps_per_epoch, start_epoch * opts.steps_per_epoch + start_step, is_main and not opts.quiet
    )
    options = {k: str(v) if isinstance(v, Path) else v for k, v in asdict(opts).items()}
    # Where a stop would resume from; changed only together with the model and optimizer (inside deferred_stop).
    pos: dict = {
        "epoch": start_epoch,
        "step": start_step,
        "sums": partial.get("sums", {}),
        "seconds": partial.get("seconds", 0.0),
    }
    log(f"training {opts.epochs} epochs x {opts.steps_per_epoch} steps, batch {per_rank_batch * world}")
    # Under DDP a stop signal is held for the whole loop and acted on when all ranks agree (after a step).
    hold = deferred_stop(hold=True) if distributed else contextlib.nullcontext()
    with activity("training"), hold, contextlib.ExitStack() as epoch_stack:
        try:
            for epoch in range(start_epoch, opts.epochs):
                first = start_step if epoch == start_epoch else 0
                low = opts.low_res if opts.low_res and epoch < opts.low_res_epochs else None
                plan = EpochPlan(opts.seed, epoch, rank, per_rank_batch, first, opts.steps_per_epoch, opts.jitter, low)
                batches = epoch_stack.enter_context(contextlib.closing(epoch_batches(samplers, plan, opts.workers)))
                t0 = time.perf_counter() - (float(partial.get("seconds", 0.0)) if first else 0.0)
                sums = dict(partial["sums"]) if first else {"loss": 0.0, "teacher": 0.0, "gt": 0.0}
                n = first
                for step in range(first, opts.steps_per_epoch):
                    with deferred_stop():  # a stop signal waits for the end of this step
                        b = next(batches)
                        x = torch.from_numpy(b.images).to(device).permute(0, 3, 1, 2).float() / 256.0
                        if teacher_net is not None:
                            with torch.no_grad(), autocast():
                                b.teacher = torch.sigmoid(teacher_net(x).float())[:, 0].cpu().numpy()
                            b.teacher_conf = np.ones(len(x), np.float32)
                        with autocast():
                            logits = net(x)
                        loss, parts = loss_fn(
                            logits.float(),
                            torch.from_numpy(b.teacher).to(device),
                            torch.from_numpy(b.teacher_conf).to(device),
                            torch.from_numpy(b.gt).to(device),
                            torch.from_numpy(b.has_gt).to(device),
                        )
                        optimizer.zero_grad(set_to_none=True)
                        loss.backward()
                        torch.nn.utils.clip_grad_norm_(model.parameters(), 5.0)
                        optimizer.step()
                        scheduler.step()
                        sums["loss"] += float(loss.detach())
                        sums["teacher"] += parts["teacher"]
                        sums["gt"] += parts["gt"]
                        n += 1
                        steps_done += 1
                        pos.update(epoch=epoch, step=n, sums=dict(sums), seconds=time.perf_counter() - t0)
                    if distributed:  # any rank told to stop: every rank stops after this same step
                        stop = _any_rank_stopping(device)
                        if stop is not None:
                            take_pending()
                            raise stop_as_if_signalled(stop)
                    status = (
                        f"epoch {epoch + 1}/{opts.epochs} loss {sums['loss'] / n:.4f} "
                        f"{n * per_rank_batch * world / (time.perf_counter() - t0):.1f} crops/s"
                    )
                    if bar.active:
                        bar.advance(status)
                    elif (step + 1) % opts.log_every == 0 or step + 1 == opts.steps_per_epoch:
                        dt = time.perf_counter() - t0
                        log(
                            f"epoch {epoch + 1}/{opts.epochs} step {step + 1}/{opts.steps_per_epoch} "
                            f"loss {sums['loss'] / n:.4f} (teacher {sums['teacher'] / n:.4f}, gt {sums['gt'] / n:.4f}) "
                            f"lr {scheduler.get_last_lr()[0]:.2e} {n * per_rank_batch * world / dt:.1f} crops/s"
                        )
                    if opts.max_steps is not None and steps_done >= opts.max_steps:
                        break
                batches.close()  # ends the epoch's batch workers
                finished = n == opts.steps_per_epoch
                entry = {
                    "epoch": epoch + 1,
                    "steps": n,
                    "loss": sums["loss"] / max(n, 1),
                    "teacher": sums["teacher"] / max(n, 1),
                    "gt": sums["gt"] / max(n, 1),
                    "seconds": round(time.perf_counter() - t0, 1),
                }
                with deferred_stop():
                    history.append(entry)
                    if is_main and finished:
                        model.eval()
                        _save_state(
                            last_path,
                            model=bare_network(model).state_dict(),
                            optimizer=optimizer.state_dict(),
                            scheduler=scheduler.state_dict(),
                            epoch=epoch + 1,
                            step=0,
                            history_json=json.dumps(history),
                            options_json=json.dumps(options),
                        )
                        save_checkpoint(
                            model,
                            final_path,
                            prompt_crop=crop,
                            training={"epoch": epoch + 1, "options": options, "images": data_json["training"]},
                            selection={"images": data_json["selection"]},
                        )
                        (out / HISTORY).write_text(json.dumps(history, indent=1))
                        if opts.keep_every and (epoch + 1) % opts.keep_every == 0:
                            _keep_snapshot(out, final_path, epoch + 1)
                        model.train()
                        log(f"epoch {epoch + 1} done: loss {entry['loss']:.4f}, checkpoint {final_path}")
                    if finished:
                        pos.update(epoch=epoch + 1, step=0, sums={}, seconds=0.0)
                if not finished or (opts.max_steps is not None and steps_done >= opts.max_steps):
                    break
        except STOP_EXCEPTIONS:
            if is_main and pos["step"] > 0:  # at an epoch boundary the epoch's checkpoint is already this state
                _save_state(
                    last_path,
                    model=bare_network(model).state_dict(),
                    optimizer=optimizer.state_dict(),
                    scheduler=scheduler.state_dict(),
                    epoch=pos["epoch"],
                    step=pos["step"],
                    partial_json=json.dumps({"sums": pos["sums"], "seconds": pos["seconds"]}),
                    history_json=json.dumps(history[: pos["epoch"]]),
                    options_json=json.dumps(options),
                )
                note_stop(
                    f"saved {last_path} at epoch {pos['epoch'] + 1} step {pos['step']}/{opts.steps_per_epoch}: "
                    "continue with --resume"
                )
            elif distributed:  # rank 0 alone writes last.pt; the others say where they stopped (the same step)
                note_stop(f"rank {rank} stopped at epoch {pos['epoch'] + 1} step {pos['step']}/{opts.steps_per_epoch}")
            raise
        finally:
            bar.close()
    if distributed:
        dist.barrier()
    if owns_group:  # an undestroyed gloo group can abort the rank at exit ("terminate called without an active
        dist.destroy_process_group()  # exception", exit -6) after a finished run
    model.eval()
    return DistillResult(final_path, last_path, history)
