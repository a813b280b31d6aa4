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
"$T/venv/bin/pip" install --quiet --no-build-isolation --no-index "$SRC/python" \
	>"$T/pip.log" 2>&1 || { cat "$T/pip.log"; exit 1; }
cp -r "$SRC/python" "$T/src" # pip may leave build/ and *.egg-info behind in the tree
cd "$T"
SV_EXPECT_INSTALLED=1 SV_SOURCE_ROOT=$SRC "$T/venv/bin/python" -m pytest -q -p no:cacheprovider \
	"$SRC/tests/python/test_client.py"
