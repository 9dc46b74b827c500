# One way in: every target builds what it needs from nothing but Python >= 3.11.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
SMOKE  := data/smoke
MINI   := data/mini

.PHONY: help test test-fast test-tfds test-triton lint format clean sweep data-status quickstart lra-all lra-smoke lra-mini lra-mini-ablation recall recall-capacity claims claims-training report bench-check bench-baseline gpu-check

help:  ## list the targets
	@grep -E '^[a-z-]+:.*##' $(MAKEFILE_LIST) | sed 's/:.*##/\t/'

$(STAMP): pyproject.toml
	@$(PYTHON) -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else "Python >= 3.11 is needed, found " + sys.version.split()[0])'
	$(PYTHON) -m venv $(VENV)
	$(call install,test)
	@touch $@

# pip install of an extra, then pip's byte-compilation on every core (pip compiles on one:
# 64 s against 48 s in all for .venv on 2 cores); like pip's, it skips files of newer
# Python syntax (torch's py312 helpers)
define install
	$(BIN)/pip install --quiet --disable-pip-version-check --no-compile -e '.[$(1)]'
	@$(BIN)/python -m compileall -q -j 0 $(VENV)/lib > /dev/null || true
endef

test: $(STAMP)  ## run the test suite (creates .venv on first use)
	$(BIN)/python -m pytest -q

test-tfds: $(STAMP)  ## the tensorflow-datasets readers against the folder readers: installs the test-tfds extra (tensorflow-cpu, tensorflow-datasets) into .venv
	$(call install,test-tfds)
	$(BIN)/python -m pytest -q tests/lra/test_tfds.py

test-triton: $(STAMP)  ## lotformer's Triton kernel against the fused solver, interpreted on the CPU: installs the triton extra into .venv
	$(call install,triton)
	TRITON_INTERPRET=1 $(BIN)/python -m pytest -q tests/attention_zoo/test_lotformer_triton.py

test-fast: $(STAMP)  ## the suite without the tests marked slow, for the edit loop (under a minute)
	$(BIN)/python -m pytest -q -m "not slow"

sweep: $(STAMP)  ## scaling sweep with the preset that fits this machine (paper on a GPU, cpu otherwise)
	$(BIN)/python -m runners.sweep --preset auto

data-status: $(STAMP)  ## which LRA tasks are in the data directory, and how to get the others
	$(BIN)/python -m lra.data status

$(SMOKE)/.generated: $(STAMP)
	$(BIN)/python -m lra.data --data-dir $(SMOKE) generate listops --count 5000 --max-length 256
	$(BIN)/python -m lra.data --data-dir $(SMOKE) generate pathfinder --count 2000
	@touch $@

lra-smoke: $(SMOKE)/.generated  ## the smoke profile: every mechanism on small generated ListOps and Pathfinder (CPU, ~5 min)
	$(BIN)/python -m runners.lra --profile smoke --tasks listops,pathfinder --methods all --seeds 0 --data-dir $(SMOKE)

quickstart: lra-smoke  ## fresh clone to results, offline, CPU: smoke data + training, recall at 8 and 16 pairs, CPU sweep (~9 min)
	@for pairs in 8 16; do $(RECALL_RUN) --methods all --seeds 0 --set tasks.recall.data.pairs=$$pairs --quiet || exit $$?; done
	$(BIN)/python -m runners.sweep --preset cpu --device cpu
	$(MAKE) --no-print-directory report
	@echo "results: results/lra (final rows), results/lra_curves (learning curves), results/recall, results/sweep; report: reports/out/leaderboard.html"

# the mini profile's data (runners/lra/profiles/mini.toml says why these sizes); the runner
# refuses data generated with other parameters and names the command that remakes it
$(MINI)/.generated: $(STAMP)
	$(BIN)/python -m lra.data --data-dir $(MINI) generate listops --count 50000 --max-length 256 --seed 0
	$(BIN)/python -m lra.data --data-dir $(MINI) generate pathfinder --count 20000 --seed 0
	@touch $@

lra-mini: $(MINI)/.generated  ## CPU-sized LRA that separates mechanisms: ListOps + Pathfinder-32, every mechanism, seeds 0,1,2, then the report (~4 h on 2 cores; resumable, finished runs skipped)
	@# seed by seed, ListOps first: a stopped make leaves whole seeds of every mechanism
	@status=0; for task in listops pathfinder; do for seed in 0 1 2; do \
	  $(BIN)/python -m runners.lra --profile mini --tasks $$task --methods all --seeds $$seed \
	    --data-dir $(MINI) || status=$$?; \
	  [ $$status -eq 143 ] && exit 143; \
	done; done; $(MAKE) --no-print-directory report; exit $$status

# mechanism:--set override, one ListOps variant each (docs/lra-training.md says why these)
ABLATIONS := lotformer:methods.lotformer.cls_tokens=1 lotformer:methods.lotformer.r=32 \
	lotformer:methods.lotformer.eps=1.0 softmax:model.pooling=cls sinkformer:model.pooling=cls

lra-mini-ablation: $(MINI)/.generated  ## the mini profile's ListOps ablations (each variant x seeds 0,1,2) into results/lra_ablation, then the report (~1.5 h; resumable)
	@status=0; for seed in 0 1 2; do for v in $(ABLATIONS); do \
	  $(BIN)/python -m runners.lra --profile mini --tasks listops --methods $${v%%:*} \
	    --seeds $$seed --set $${v#*:} --data-dir $(MINI) --out results/lra_ablation \
	    --curves results/lra_ablation_curves || status=$$?; \
	  [ $$status -eq 143 ] && exit 143; \
	done; done; $(MAKE) --no-print-directory report; exit $$status

# associative recall (runners/lra/profiles/recall.toml says why these settings): the pairs
# grid, seed by seed, so that a stopped make leaves whole seeds; made in memory, no data step
RECALL_PAIRS := 8 16 32 64
RECALL_RUN = $(BIN)/python -m runners.lra --profile recall --tasks recall --out results/recall \
	--curves results/recall_curves

recall: $(STAMP)  ## associative recall: every mechanism x pairs 8-64 x seeds 0,1,2 into results/recall, then the report (~1 h on 2 cores; resumable)
	@status=0; for seed in 0 1 2; do for pairs in $(RECALL_PAIRS); do \
	  $(RECALL_RUN) --methods all --seeds $$seed --set tasks.recall.data.pairs=$$pairs || status=$$?; \
	  [ $$status -eq 143 ] && exit 143; \
	done; done; $(MAKE) --no-print-directory report; exit $$status

# mechanism:--set override: the options that set capacity (the defaults, lotformer r=32,
# performer nb_features=256 and sinkformer iters=3, are make recall's runs)
CAPACITY := lotformer:methods.lotformer.r=4 lotformer:methods.lotformer.r=8 \
	lotformer:methods.lotformer.r=16 lotformer:methods.lotformer.r=64 \
	performer:methods.performer.nb_features=16 performer:methods.performer.nb_features=64 \
	performer:methods.performer.nb_features=1024 sinkformer:methods.sinkformer.iters=1 \
	sinkformer:methods.sinkformer.iters=9

recall-capacity: $(STAMP)  ## the capacity knobs (lotformer r, performer nb_features, sinkformer iters) x pairs x seeds 0,1,2 into results/recall, then the report (~3 h; resumable)
	@status=0; for seed in 0 1 2; do for v in $(CAPACITY); do for pairs in $(RECALL_PAIRS); do \
	  $(RECALL_RUN) --methods $${v%%:*} --seeds $$seed --set $${v#*:} \
	    --set tasks.recall.data.pairs=$$pairs || status=$$?; \
	  [ $$status -eq 143 ] && exit 143; \
	done; done; done; $(MAKE) --no-print-directory report; exit $$status

claims: $(STAMP)  ## the zoo-level measurements of the claims page (Sinkhorn under a causal mask, Sinkhorn(1) = softmax, lotformer doubly stochastic at init) into results/claims, then the report (~1 min)
	$(BIN)/python -m runners.claims
	$(MAKE) --no-print-directory report

# the attention diagnostics the claims page reads (train.diagnostics, on in the mini and
# recall profiles) for runs that finished before diagnostics existed: the same runs (same
# config hashes) trained again into a folder of their own, seed by seed
DIAGNOSED := softmax,sinkformer,lotformer
DIAGNOSE = --methods $(DIAGNOSED) --out results/diagnostics --curves results/diagnostics_curves \
	--checkpoints checkpoints/diagnostics

claims-training: $(MINI)/.generated  ## the diagnostics runs of the claims page: softmax, sinkformer, lotformer on recall (32 pairs) and the mini ListOps, seeds 0,1,2, into results/diagnostics (~1.5 h; resumable)
	@status=0; for seed in 0 1 2; do \
	  $(BIN)/python -m runners.lra --profile recall --tasks recall --seeds $$seed $(DIAGNOSE) \
	    || status=$$?; [ $$status -eq 143 ] && exit 143; \
	  $(BIN)/python -m runners.lra --profile mini --tasks listops --seeds $$seed $(DIAGNOSE) \
	    --data-dir $(MINI) || status=$$?; [ $$status -eq 143 ] && exit 143; \
	done; $(MAKE) --no-print-directory report; exit $$status

lra-all: $(STAMP)  ## every task with data x every mechanism x seeds 0,1,2 at the paper profile (GPU if any); resumable
	$(BIN)/python -m lra.data status
	$(BIN)/python -m runners.lra --profile paper --tasks all --methods all --seeds 0,1,2

report: $(STAMP)  ## tables, figures and the leaderboard page from results/ into reports/out/
	$(BIN)/python -m reports build --results results --out reports/out

bench-check: $(STAMP)  ## CI gate: the working tree (or the last commit) against its base commit, both measured now, in alternation; exit 1 on a regression, 3 if too noisy to judge (~3 min)
	$(BIN)/python -m runners.bench check $(BENCH)

bench-baseline: $(STAMP)  ## rewrite the gate's baseline for this device kind (commit it on its own)
	$(BIN)/python -m runners.bench baseline

gpu-check: $(STAMP)  ## on a CUDA GPU: tests, paper sweep, gate baseline, LRA efficiency, bf16 training in ~8 min; rows to results/
	$(BIN)/python -m runners.gpu_check

lint: $(STAMP)  ## ruff lint and format check
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

format: $(STAMP)  ## apply ruff's fixes and formatting
	$(BIN)/ruff check --fix .
	$(BIN)/ruff format .

clean:  ## remove the virtual environment and caches
	rm -rf $(VENV) .tox .pytest_cache .ruff_cache *.egg-info
