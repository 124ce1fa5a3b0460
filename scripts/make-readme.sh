#!/usr/bin/env bash
# Rebuilds README.md from its parts: the head, then the configuration and simulator
# references (docs/CONFIG.md, docs/SIM.md), so the README documents every key and flag.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
{
    cat docs/README.head.md
    cat docs/CONFIG.md
    echo
    cat docs/SIM.md
    echo
    [ -f docs/README.tail.md ] && cat docs/README.tail.md
} > README.md
