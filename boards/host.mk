# host: the developer's or CI's own machine (Debian 12, amd64 or arm64), native build.
# Build and test: make && make test
BOARD_ARCH     = native
BOARD_TRIPLET  =
BOARD_CFLAGS   =
BOARD_APT      = libisal-dev
BOARD_RUN      =
BOARD_TIMEOUT_MULT = 1
BOARD_RAM_MB   = 4096

# The host uses the defaults in include/cairn/core/limits.h unchanged. A
# board lists only the limits it changes (LIMIT_<name> = value; sizes in
# bytes, times in milliseconds); a node's cairn.json may override any limit
# under "limits".

# Watchdog and status LED: the host has none (HW_watchdog, HW_led empty).
HW_watchdog             =
HW_led                  =
