# kirkwood: Marvell Kirkwood (Feroceon ARMv5TE, armel, 256 MB: SheevaPlug,
# Pogoplug class). Small limits everywhere; no AES instructions, no NEON.
# Build and test: make deps BOARD=kirkwood && make test BOARD=kirkwood   (tests under qemu-arm)
BOARD_ARCH     = armel
BOARD_TRIPLET  = arm-linux-gnueabi
BOARD_CFLAGS   = -march=armv5te -mtune=arm926ej-s -Wno-psabi -D_FILE_OFFSET_BITS=64
BOARD_LDLIBS   = -latomic
BOARD_APT      = g++-arm-linux-gnueabi qemu-user libuv1-dev:armel liblmdb-dev:armel libmbedtls-dev:armel libcjson-dev:armel libgtest-dev:armel libstdc++6:armel libatomic1:armel
BOARD_RUN      = qemu-arm
BOARD_TIMEOUT_MULT = 20
BOARD_RAM_MB   = 256

# The memory class: cairnd stays under 16 MiB of RSS while serving the GBS
# benchmark (make bench BOARD=kirkwood, guest memory under qemu-arm). A
# connection uploading at once holds about 250 KiB of TLS and HTTP buffers,
# so 24 connections, not 32, and uploads share 2.5 MiB of body pieces.

LIMIT_max_connections      = 24
LIMIT_control_max_clients  = 4
LIMIT_control_frame_bytes  = 16384
LIMIT_control_inflight     = 8
LIMIT_control_chunk_bytes  = 262144
LIMIT_http_header_bytes    = 8192
LIMIT_http_max_headers     = 32
LIMIT_http_body_bytes      = 262144
LIMIT_http_idle_ms         = 30000
LIMIT_lmdb_map_bytes       = 134217728
LIMIT_lmdb_map_max_bytes   = 536870912
LIMIT_task_history         = 256
LIMIT_tasks_max_active     = 16
LIMIT_tasks_max_per_key    = 8
LIMIT_threadpool           = 1
LIMIT_tls_prefer_chacha    = 1
LIMIT_store_reserved_bytes = 268435456
LIMIT_store_max_mutable_share_bytes = 67108864
LIMIT_store_queue_ops      = 512
LIMIT_store_queue_bytes    = 8388608
LIMIT_store_batch_bytes    = 4194304
LIMIT_gbs_upload_buffer_bytes = 2621440
LIMIT_gbs_read_piece_bytes = 65536
LIMIT_sdmf_max_bytes       = 4194304
# Every buffer of 64 KiB or more is its own mapping, unmapped when freed: the
# 16 MiB class was measured so. It costs CPU (a page fault per 4 KiB of each
# fresh buffer); the larger boards take the 4 MiB default.
LIMIT_malloc_mmap_threshold_bytes = 65536

# Watchdog and status LED (docs/boards.md; cairn.json "hardware" overrides).
# orion_wdt; the SheevaPlug's health LED (other Kirkwood boxes name theirs
# differently: see /sys/class/leds and set "hardware.led").
HW_watchdog             = /dev/watchdog
HW_watchdog_interval_ms = 5000
HW_led                  = plug:green:health
