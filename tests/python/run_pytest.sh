#!/bin/sh
# run_pytest.sh SOURCE_ROOT - install python/ the way the README says (a venv
# that sees Debian's pyzmq and numpy, pip with Debian's setuptools, no
# network) and run tests/python/test_client.py with pytest from that venv,
# outside the source tree, so the package under test is the installed one.
set -eu
SRC=$1
T=$(mktemp -d)
trap 'rm -rf "$T"' EXIT
/usr/bin/python3 -m venv --system-site-packages "$T/venv"
cp -r "$SRC/python" "$T/src" # setuptools builds in place: leave the tree alone
"$T/venv/bin/pip" install --quiet --no-build-isolation --no-index "$T/src" \
	>"$T/pip.log" 2>&1 || { cat "$T/pip.log"; exit 1; }
cd "$T"
SV_EXPECT_INSTALLED=1 SV_SOURCE_ROOT=$SRC "$T/venv/bin/python" -m pytest -q -p no:cacheprovider \
	"$SRC/tests/python/test_client.py"
