#!/bin/sh
# Build bpsc-<version>.vsix from this directory with the npm packages of package.json:
# vscode-languageclient (shipped inside the .vsix) and @vscode/vsce (the packager).
#   sh editors/vscode/package.sh        # writes editors/vscode/bpsc-0.1.0.vsix
# Then: code --install-extension editors/vscode/bpsc-0.1.0.vsix, and have `bpsc` on PATH
# (or set "bpsc.path").
set -eu
cd "$(dirname "$0")"
if [ -f package-lock.json ]; then npm ci --no-audit --no-fund; else npm install --no-audit --no-fund; fi
npx vsce package --skip-license --allow-missing-repository -o "bpsc-$(node -p 'require("./package.json").version').vsix"
