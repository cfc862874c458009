"""The application service of ``search``, ``resume`` and the ``--jobs`` workers: prepare, then run.

``prepare_search(request)`` and ``prepare_resume(request)`` validate everything and load what a run
needs once per process (the script, the search space, the study and its settings), writing
nothing until every check has passed; ``PreparedRun.run(view)`` then runs the trials here or in
worker processes, each of which opens the same ``PreparedRun`` with ``open_run``. The CLI only
turns options into a request and outcomes into messages.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tunekit.errors import BadInput
from tunekit.search_spaces.catalog import default_optimizers, default_schedules
from tunekit.search_spaces.centring import TAU_FRACTION, batch_centre, batch_choices
from tunekit.search_spaces.space import SearchSpace, SpaceConfig, load_space_file, parse_names
from tunekit.service.setting_names import spell_setting
from tunekit.study.continuation import continuations, enqueue_continuations
from tunekit.study.coordination import DEFAULT_TRIALS, remaining_trials
from tunekit.study.objectives import check_also
from tunekit.study.records import counted_trials
from tunekit.study.rungs import Fidelity
from tunekit.study.settings import StudySettings, create_or_continue, existing_settings, open_study
from tunekit.study.storage import is_sqlite, open_storage, reap_dead_workers, sqlite_path
from tunekit.training.fit import RunOptions
from tunekit.training.script import LoadedScript, ScriptSpec, load_script


@dataclass(frozen=True)
class SearchRequest:
    """``tunekit search``: what the user asked for, options already parsed.

    ``given`` names the settings the user chose explicitly (``StudySettings.COMPARABLE`` names);
    only those must agree with an existing study of the same name.
    """

    script: ScriptSpec
    study_name: str
    url: str
    max_steps: int
    trials: int | None = None
    timeout: float | None = None
    max_epochs: int | None = None
    optimizers: str | None = None
    schedules: str | None = None
    metric: str = "val_loss"
    direction: str = "minimize"
    prior: str = "deepseek"
    space_file: Path | None = None
    seed: int = 0
    evaluations: int = 4
    jobs: int = 1
    options: RunOptions = field(default_factory=RunOptions)
    given: frozenset[str] = frozenset()
    ray: str | None = None  # the Ray cluster's address: the --jobs workers run there (issue #11)
    config: Path | None = None  # a LightningCLI config: model and data arguments (issue #15)
    run_given: frozenset[str] = frozenset()  # RunOptions fields the user typed; the others keep a study's stored ones
    also: str | None = None  # a second objective, "seconds" or "peak_memory" (tunekit.study.objectives)
    fidelity: str | None = None  # "full" or "sh", with min_steps and eta (tunekit.study.rungs, issue #9)
    min_steps: int | None = None
    eta: int | None = None
    budget_bound: str | None = None  # with sh: "own-schedule" or "compressed" (tunekit.study.rungs)
    from_study: str | None = None  # an earlier study whose kept stable phases this one continues first


@dataclass(frozen=True)
class ResumeRequest:
    """``tunekit resume``: ``trials`` more, or (None) up to the stored target."""

    study_name: str
    url: str
    trials: int | None = None
    timeout: float | None = None
    jobs: int = 1
    options: RunOptions = field(default_factory=RunOptions)
    run_given: frozenset[str] = frozenset()  # RunOptions fields the user typed; the others are the study's
    ray: str | None = None  # as SearchRequest.ray


@dataclass
class PreparedRun:
    """Everything a run needs, made once per process and passed down."""

    url: str
    storage: Any
    study: Any
    settings: StudySettings
    script: LoadedScript
    space: SearchSpace
    options: RunOptions
    timeout: float | None = None
    jobs: int = 1
    ray: str | None = None  # the Ray cluster's address, when the workers run there
    warnings: tuple[str, ...] = ()  # for the user, before the trials start

    @property
    def remaining(self) -> int:
        return remaining_trials(self.study, self.settings.target_trials)

    def add_trials(self, n_trials: int | None) -> int:
        """Raise the shared target by ``n_trials`` (None: keep the stored one); the trials to run now.

        Without ``n_trials`` the stored target stands: recounting would raise it by whatever other
        workers finished in the meantime.
        """
        reap_dead_workers(self.study)  # trials of workers killed since the last run: failed and queued again
        counted = counted_trials(self.study.get_trials(deepcopy=False))
        if n_trials is not None:
            self.settings.target_trials = counted + n_trials
            self.settings.save(self.study)
        return max(0, self.settings.target_trials - counted)

    def run(self, view: Any) -> Any:
        """Run the trials in this process (``jobs == 1``) or in ``jobs`` worker processes.

        ``view`` is a ``SearchEvents`` for one process, the workers' view (polled) for several.
        """
        if self.ray is not None:
            from tunekit.service.ray_workers import run_ray_workers

            return run_ray_workers(self.url, self.study, self.jobs, self.timeout, self.options, self.ray, view)
        if self.jobs == 1:
            return self.run_here(view)
        from tunekit.service.workers import run_workers

        return run_workers(self.url, self.study, self.jobs, self.timeout, self.options, view)

    def run_here(self, view: Any, worker: int = 0, parent_pid: int | None = None) -> Any:
        from tunekit.service.trial_loop import run_search

        return run_search(
            self.storage,
            self.study,
            self.settings,
            self.script,
            self.space,
            timeout=self.timeout,
            view=view,
            options=self.options,
            worker=worker,
            parent_pid=parent_pid,
        )


def prepare_search(request: SearchRequest) -> tuple[PreparedRun, int]:
    """Validate a search, measure the prior, check the script, then create or continue the study.

    Returns:
        The prepared run and the number of trials to add (the request's, else ``DEFAULT_TRIALS``).

    Raises:
        BadInput: any option, file, script or stored setting that cannot be used; nothing has
            been written then.
    """
    from tunekit.priors import Prior, batch_of_law, make_prior, probe_request
    from tunekit.training.fit import check_script

    check_jobs(request.jobs, request.url, request.options, request.ray)
    check_also(request.also)
    optimizer_names = parse_names(request.optimizers, "optimizers") or default_optimizers()
    schedule_names = parse_names(request.schedules, "schedules") or default_schedules()
    overrides = load_space_file(request.space_file) if request.space_file else {}
    spec, cli_config, given = request.script, None, set(request.given)
    if request.config is not None:
        from tunekit.training.cli_config import read_cli_config

        cli_config = read_cli_config(request.config, spec.path)
        spec = cli_config.apply(spec)
        given |= {"model_args", "data_args"}  # the config's arguments are chosen as explicitly as options
    loaded = load_script(spec)
    if cli_config is not None:
        cli_config.check(loaded)
    batch = loaded.default_batch_size
    manual = loaded.manual_optimization(batch)  # refuses several optimizers before anything is written
    max_steps = request.max_steps
    if request.max_epochs is not None:
        if "max_steps" in given:
            raise BadInput("give either --max-steps or --max-epochs, not both.")
        # Schedules are fractions of a step budget, so an epoch budget becomes steps here, once.
        max_steps = request.max_epochs * loaded.steps_per_epoch(batch)
        given.add("max_steps")
    fidelity = check_fidelity(request, max_steps)
    # Issue #14: a short LR probe centres --prior measure and laws outside their domain.
    probe = probe_request(
        request.trials or DEFAULT_TRIALS,
        max_steps,
        schedule_names,
        batch,
        seed=request.seed,
        manual_optimization=manual,
        metric=request.metric,
        minimize=request.direction == "minimize",
        options=request.options,
    )
    # A continued study runs with its stored prior (create_or_continue): measuring again, an LR
    # probe included (5% of a search's compute, issue #14), would be thrown away.
    earlier = existing_settings(request.url, request.study_name)
    if earlier is not None and ("prior" not in given or request.prior == earlier.prior.get("law")):
        chosen_prior = Prior(
            earlier.prior.get("law", ""), earlier.space.centre_lr, earlier.space.span_scale, earlier.prior
        )
    else:
        chosen_prior = make_prior(request.prior, loaded, max_steps, batch, probe=probe)
    config = SpaceConfig(
        optimizers=optimizer_names,
        schedules=schedule_names,
        centre_lr=chosen_prior.centre_lr,
        max_steps=max_steps,
        span_scale=chosen_prior.span_scale,
        batch_sizes=batch_choices(batch),
        default_batch_size=batch,
        budget_samples=max_steps * batch if batch else None,
        overrides=overrides,
        seed=request.seed,
        evaluations=request.evaluations,
        manual_optimization=manual,
        centre_batch_size=batch_centre(batch, batch_choices(batch), batch_of_law(chosen_prior.record)).value,
        decay_tau_fraction=TAU_FRACTION,
    )
    space = SearchSpace(config)  # validates the space before anything is written
    # --from-study: checked against the space the trials will run in (a continued study's stored one)
    runs_in = (earlier.script, earlier.space) if earlier else (spec, config)
    continued, skipped = continuations(
        request.url, request.from_study, request.study_name, *runs_in, request.options.devices
    )
    settings = StudySettings(
        spec,
        request.metric,
        request.direction,
        config,
        chosen_prior.record,
        run=request.options.to_dict(),
        also=request.also,
        fidelity=fidelity.to_dict(),
    )
    store = open_storage(request.url)
    check_script(loaded, request.metric, space.first_recipe(batch), request.options, batch)
    if request.options.devices > 1:
        from tunekit.training.distributed import check_shardable

        check_shardable(loaded, batch)
    if "precision" in request.run_given:
        given.add("precision")
    study, settings = create_or_continue(store, request.study_name, settings, given, spell=spell_setting)
    # Device options not typed keep the study's stored ones; typed ones apply to this run only.
    options = RunOptions.from_dict(settings.run).overridden(request.options, request.run_given)
    # A continued study runs with its stored settings (options not given keep their stored values).
    if settings.script != spec:
        loaded = load_script(settings.script)
    if settings.space != config:
        space = SearchSpace(settings.space)
    enqueue_continuations(study, continued)
    warnings = [w for w in (cli_config.warning() if cli_config is not None else None, *skipped) if w]
    prepared = PreparedRun(
        request.url,
        store,
        study,
        settings,
        loaded,
        space,
        options,
        request.timeout,
        request.jobs,
        ray=request.ray,
        warnings=tuple(warnings),
    )
    return prepared, request.trials or DEFAULT_TRIALS


def prepare_resume(request: ResumeRequest) -> PreparedRun:
    """Open a study to continue it from its stored settings.

    Raises:
        BadInput: no such study, ``--jobs`` cannot be used here, the study's script is gone, or
            ``--precision`` differs from the study's (it changes the results).
    """
    prepared = open_run(
        request.url, request.study_name, request.options, request.timeout, request.jobs, request.run_given
    )
    stored = RunOptions.from_dict(prepared.settings.run).precision
    if "precision" in request.run_given and request.options.precision != stored:
        raise BadInput(
            f"study '{request.study_name}' was created with --precision {stored}, not {request.options.precision}; "
            "resume with the same precision, or start a new --study with tunekit search."
        )
    check_jobs(request.jobs, request.url, prepared.options, request.ray)
    if Fidelity.from_dict(prepared.settings.fidelity).mode == "sh" and prepared.options.devices > 1:
        raise BadInput("--fidelity sh runs its rungs on one device; resume with --devices 1.")
    prepared.ray = request.ray
    return prepared


def open_run(
    url: str,
    name: str,
    options: RunOptions,
    timeout: float | None = None,
    jobs: int = 1,
    given: frozenset[str] | tuple[str, ...] = RunOptions.FIELDS,
) -> PreparedRun:
    """The ``PreparedRun`` of an existing study (``resume``, and every ``--jobs`` worker process).

    Args:
        given: the fields of ``options`` that replace the study's stored device options (a worker
            is given all of them by its parent; ``resume`` those the user typed).

    Raises:
        BadInput: no such study, or its script no longer exists.
    """
    store = open_storage(url)
    study, settings = open_study(store, name)
    options = RunOptions.from_dict(settings.run).overridden(options, frozenset(given))
    reap_dead_workers(study)
    if not Path(settings.script.path).is_file():
        raise BadInput(
            f"the study's script '{settings.script.path}' no longer exists; put it back or run tunekit search on its new path with --study {name}."
        )
    return PreparedRun(
        url, store, study, settings, load_script(settings.script), SearchSpace(settings.space), options, timeout, jobs
    )


def check_jobs(jobs: int, url: str, options: RunOptions | None = None, ray: str | None = None) -> None:
    """Refuse what this version cannot run: more workers (or CPU ranks) than cores or GPUs, workers
    that cannot share the storage, a multi-device strategy tunekit cannot launch.

    Raises:
        BadInput: ``--devices`` above 1 with such a strategy, ``--jobs`` x ``--devices`` exceeds the
            visible GPUs (on a GPU accelerator) or, on the CPU, the cores, ``--jobs`` exceeds the
            cores, or the storage is in-memory SQLite.
    """
    from tunekit.service.workers import available_cores, worker_gpus
    from tunekit.training.fit import check_multi_device

    options = options or RunOptions()
    check_multi_device(options)
    if ray is not None:  # the workers run on the cluster's nodes, not on this machine's cores or GPUs
        from tunekit.service.ray_workers import check_ray

        check_ray(ray, url)
        return
    on_cpu = worker_gpus(jobs, options) is None  # refuses too few GPUs
    cores = available_cores()
    processes = jobs * (options.devices if on_cpu else 1)
    if processes > cores and processes > jobs:
        raise BadInput(
            f"--jobs {jobs} --devices {options.devices} trains on {processes} CPU processes, more than the "
            f"{cores} core(s) here; each needs a core of its own, so lower --jobs or --devices."
        )
    if jobs > cores:
        raise BadInput(
            f"--jobs {jobs} is more than the {cores} CPU core(s) here; each worker needs a core of its own, "
            f"so use --jobs {cores} or fewer."
        )
    if jobs > 1 and is_sqlite(url) and sqlite_path(url) is None:
        raise BadInput("--jobs needs a storage the workers can share; give a file (sqlite:///FILE) or a server URL.")


def check_fidelity(request: SearchRequest, max_steps: int) -> Fidelity:
    """The request's validated fidelity (issue #9).

    Raises:
        BadInput: as ``Fidelity.parse``; or rungs with ``--also`` or ``--devices`` above 1, whose
            trials tunekit judges at validation points only.
    """
    fidelity = Fidelity.parse(request.fidelity, request.min_steps, request.eta, max_steps, request.budget_bound)
    if fidelity.mode == "sh" and request.also:
        raise BadInput("--fidelity sh does not combine with --also; drop one of them.")
    if fidelity.mode == "sh" and request.options.devices > 1:
        raise BadInput("--fidelity sh runs its rungs on one device; use --devices 1 or --fidelity full.")
    return fidelity
