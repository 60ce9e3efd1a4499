# tests/viz/viz.mk -- hnswc.viz: pictures, animations and the explorer page
# (included by the top-level Makefile after python/python.mk).
#
#   make test-viz   the pytest suite in tests/viz against build/venv; the
#                   explorer test drives Debian's Chromium through
#                   playwright-core. Pictures land in $(BUILD)/viz.
#   make viz-docs   re-renders the pictures committed under docs/viz
#
# playwright-core comes from npm, pinned by tests/browser/package-lock.json,
# and is installed with `npm ci` into $(BUILD)/browser (never a browser
# download: playwright-core has none, and the tests point it at
# /usr/bin/chromium).

VIZ_OUT        = $(BUILD)/viz
BROWSER_DIR    = $(BUILD)/browser
BROWSER_STAMP  = $(BROWSER_DIR)/.installed
VIZ_ENV        = HNSWC_VIZ_OUT=$(abspath $(VIZ_OUT)) MPLBACKEND=Agg \
                 HNSWC_PLAYWRIGHT=$(abspath $(BROWSER_DIR))/node_modules/playwright-core

TEST_TARGETS += test-viz

.PHONY: test-viz viz-docs

$(BROWSER_STAMP): tests/browser/package.json tests/browser/package-lock.json
	@mkdir -p $(BROWSER_DIR)
	cp tests/browser/package.json tests/browser/package-lock.json $(BROWSER_DIR)/
	cd $(BROWSER_DIR) && npm ci --no-audit --no-fund --ignore-scripts --loglevel=error
	@touch $@

test-viz: python $(BROWSER_STAMP)
	@mkdir -p $(VIZ_OUT)
	$(VIZ_ENV) $(PY_VENV)/bin/python -m pytest -q -p no:cacheprovider tests/viz
	$(VIZ_ENV) $(PY_VENV)/bin/python -m hnswc.viz demo --out $(VIZ_OUT)/demo --no-gifs >/dev/null
	@echo "test-viz: pictures in $(VIZ_OUT)"

# The README's pictures: the demo set, without the animations (kept out of
# git for their size; `python -m hnswc.viz demo` makes them).
viz-docs: python
	$(VIZ_ENV) $(PY_VENV)/bin/python -m hnswc.viz demo --out $(VIZ_OUT)/docs --no-gifs --small >/dev/null
	@mkdir -p docs/viz
	cp $(VIZ_OUT)/docs/layer0.png $(VIZ_OUT)/docs/layers.png $(VIZ_OUT)/docs/search.png docs/viz/
