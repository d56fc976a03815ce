# rs — Korean review sentiment. `make demo` and `make test` work offline on a fresh machine.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
# The CPU build of torch lies on this machine's disk; an unpinned torch would pull a multi-GB CUDA build.
TORCH_PIN ?= torch==2.13.0

DEMO_REPORT := data/processed/sample_reviews.report.html
DEMO_OUT := data/processed/sample_reviews.labeled.csv
DEMO_PRETRAINED := models/pretrained-sample
DEMO_PRETRAINED_OUT := data/processed/sample_reviews.pretrained.labeled.csv

.PHONY: install demo demo-pretrain test test-fast lint bench bench-pretrain clean

install: $(STAMP)

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet "$(TORCH_PIN)"
	$(BIN)/pip install --quiet -e ".[dev,spark,ray,distributed]"  # the tests label on Spark and Ray and train on 2 processes too
	touch $(STAMP)

# The whole pipeline on the bundled sample, offline. The model is the TF-IDF baseline: with no model hub it is
# the best base that can be made here (NSMC binary: 0.865 accuracy, against 0.839-0.852 for an ELECTRA-mini from
# random weights and 0.849-0.861 from a 45-60-minute `rs pretrain` base, see README). `make demo-pretrain`
# shows the ELECTRA path: rs pretrain on the sample, then fine-tuning on that base.
demo: install
	HF_HUB_OFFLINE=1 $(BIN)/rs preprocess data/sample_reviews.csv
	HF_HUB_OFFLINE=1 $(BIN)/rs finetune --base tfidf --name demo-sample --force
	HF_HUB_OFFLINE=1 $(BIN)/rs predict data/sample_reviews.csv -o $(DEMO_OUT) --model models/demo-sample
	HF_HUB_OFFLINE=1 $(BIN)/rs report $(DEMO_OUT) -o $(DEMO_REPORT) --model models/demo-sample --by domain --min-group 10
	@echo "Labeled file: $(DEMO_OUT)"
	@echo "Report: $(DEMO_REPORT) (open it in a browser)"

demo-pretrain: install
	HF_HUB_OFFLINE=1 $(BIN)/rs pretrain data/sample_reviews.csv --max-steps 150 --vocab-size 3000 --output $(DEMO_PRETRAINED) --force
	HF_HUB_OFFLINE=1 $(BIN)/rs preprocess data/sample_reviews.csv
	HF_HUB_OFFLINE=1 $(BIN)/rs finetune --base $(DEMO_PRETRAINED) --name demo-pretrained --epochs 20 --learning-rate 1e-3 --patience 0 --force
	HF_HUB_OFFLINE=1 $(BIN)/rs predict data/sample_reviews.csv -o $(DEMO_PRETRAINED_OUT) --model models/demo-pretrained
	@echo "Labeled file: $(DEMO_PRETRAINED_OUT)"

test: install
	HF_HUB_OFFLINE=1 $(BIN)/python -m pytest -q

test-fast: install
	HF_HUB_OFFLINE=1 $(BIN)/python -m pytest -q -m "not slow"

lint: install
	$(BIN)/ruff check review_sentiment tests bench
	$(BIN)/ruff format --check review_sentiment tests bench

# About half an hour on 2 cores (NSMC from ../shared/data/nsmc_reviews.csv.gz; predict_speed falls back to the sample).
bench: install
	$(BIN)/python bench/normalize_effects.py
	$(BIN)/python bench/baseline_tfidf.py --train-size 150000
	$(BIN)/python bench/predict_speed.py --million
	$(BIN)/python bench/report_speed.py --rows 100000 --rows 1000000
	$(BIN)/python bench/training_speed.py
	@# long reviews: truncation vs scored parts, on the NSMC model that make bench-pretrain fine-tunes
	if [ -d bench/results/finetuned-random-init-mini-seed0 ]; then $(BIN)/python bench/long_reviews.py; \
	else echo "skipped bench/long_reviews.py: run make bench-pretrain first (it makes the model)"; fi
	@# calibration of TF-IDF and of a transformer fine-tuned from the base that make bench-pretrain pretrains
	if [ -d bench/results/pretrained-mini ]; then $(BIN)/python bench/calibration.py --train-size 40000 --test-size 20000 --ablate-class-weights; \
	else echo "skipped bench/calibration.py: run make bench-pretrain first (it makes the base)"; fi

# About 100 minutes on 2 cores (needs ../shared/data): an hour of ELECTRA pretraining; then the pretrained model (two
# fine-tune seeds) and three random-initialization controls fine-tuned alike on 150,000, 20,000 and 5,000 labels;
# TF-IDF alone and averaged with each.
bench-pretrain: install
	$(BIN)/python bench/pretrain_vs_random.py --pretrain-minutes 60 --train-size 150000 --fewer-labels 20000 5000 \
		--pretrained-seeds 0 1 --control-seeds 0 1 2

clean:
	rm -rf $(VENV) models/*/ data/processed/*.csv data/processed/*.json .pytest_cache
