#!/usr/bin/env bash
# Install headless Chromium and its WebDriver (Debian packages) for the browser test of the
# inference report (tests/apis/test_inference_report.py). `make test` runs it before the tests.
# Idempotent: when both binaries are present it only says so. Needs root (or sudo) and apt-get;
# GM_PLUGINS_SKIP_BROWSER=1 skips it (the browser test then skips itself too).
set -euo pipefail

if [ "${GM_PLUGINS_SKIP_BROWSER:-}" = "1" ]; then
    echo "==> browser: GM_PLUGINS_SKIP_BROWSER=1, not installing Chromium (its test is skipped)"
    exit 0
fi

CHROMIUM=/usr/bin/chromium
CHROMEDRIVER=/usr/bin/chromedriver
PACKAGES=(chromium chromium-driver)

if [ -x "$CHROMIUM" ] && [ -x "$CHROMEDRIVER" ]; then
    echo "==> browser: $CHROMIUM and $CHROMEDRIVER present, nothing to install"
    exit 0
fi

SUDO=()
if [ "$(id -u)" -ne 0 ]; then
    command -v sudo >/dev/null || {
        echo "browser.sh: root or sudo is needed for apt-get; install chromium and chromium-driver" \
            "yourself, or set GM_PLUGINS_SKIP_BROWSER=1 to skip the browser test" >&2
        exit 1
    }
    SUDO=(sudo)
fi
export DEBIAN_FRONTEND=noninteractive
APT=("${SUDO[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends)

echo "==> browser: installing ${PACKAGES[*]} with apt-get"
if ! "${APT[@]}" "${PACKAGES[@]}"; then
    echo "==> browser: install failed with the current package lists; running apt-get update"
    "${SUDO[@]}" apt-get update
    "${APT[@]}" "${PACKAGES[@]}"
fi

for binary in "$CHROMIUM" "$CHROMEDRIVER"; do
    [ -x "$binary" ] || { echo "browser.sh: $binary is still missing after the install" >&2; exit 1; }
done
echo "==> browser: installed $("$CHROMIUM" --version 2>/dev/null || echo chromium), $("$CHROMEDRIVER" --version | head -n 1)"
