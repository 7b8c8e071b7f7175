#!/bin/sh
# SPDX-License-Identifier: GPL-2.0
#
# Apply ml_lib to a kernel source tree the way a user would: copy lib/ml and
# the headers, put the Kconfig entries between marker lines at the end of
# lib/Kconfig and hook lib/ml into lib/Makefile. Safe to run again: a second
# run refreshes the copied files, replaces the Kconfig block between the
# markers with the current Kconfig.snippet (lib/Kconfig is rewritten only if
# that changes it) and adds the lib/Makefile line only if it is missing.
#
# usage: scripts/apply-to-kernel.sh KERNEL_SRC_DIR
set -eu

die() { echo "apply-to-kernel: $*" >&2; exit 2; }

[ $# -eq 1 ] || die "usage: $0 KERNEL_SRC_DIR"
ksrc=$1
repo=$(cd "$(dirname "$0")/.." && pwd)
[ -f "$ksrc/lib/Kconfig" ] && [ -f "$ksrc/lib/Makefile" ] ||
	die "$ksrc is not a kernel source tree (no lib/Kconfig)"

# Sources only: a user-space build in the repo may have left objects there.
mkdir -p "$ksrc/lib/ml"
rsync -a --delete --exclude='*.o' --exclude='.*.cmd' --exclude='*.ko' \
	--exclude='*.mod' --exclude='*.mod.c' --exclude='*.a' \
	--exclude='modules.order' --exclude='Module.symvers' \
	"$repo/lib/ml/" "$ksrc/lib/ml/"
cp "$repo/include/linux/ml_lib.h" "$ksrc/include/linux/ml_lib.h"
if [ -f "$repo/include/uapi/linux/ml_lib.h" ]; then
	cp "$repo/include/uapi/linux/ml_lib.h" "$ksrc/include/uapi/linux/ml_lib.h"
fi

# Kconfig: replace our block (between markers) so snippet edits propagate.
begin='# ml_lib begin (scripts/apply-to-kernel.sh)'
end='# ml_lib end'
tmp=$(mktemp)
awk -v b="$begin" -v e="$end" '
	$0 == b { skip = 1; next }
	$0 == e { skip = 0; next }
	!skip' "$ksrc/lib/Kconfig" >"$tmp"
{ cat "$tmp"; echo "$begin"; cat "$repo/Kconfig.snippet"; echo "$end"; } >"$ksrc/lib/Kconfig.new"
rm -f "$tmp"
if cmp -s "$ksrc/lib/Kconfig.new" "$ksrc/lib/Kconfig"; then
	rm -f "$ksrc/lib/Kconfig.new"
else
	mv "$ksrc/lib/Kconfig.new" "$ksrc/lib/Kconfig"
fi

line='obj-$(CONFIG_ML_LIB) += ml/'
grep -qxF "$line" "$ksrc/lib/Makefile" || printf '%s\n' "$line" >>"$ksrc/lib/Makefile"

echo "apply-to-kernel: ml_lib applied to $ksrc"
