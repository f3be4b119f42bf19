# host: the developer's or CI's own machine (Debian 12, amd64 or arm64), native build.
# Build and test: make && make test
BOARD_ARCH     = native
BOARD_TRIPLET  =
BOARD_CFLAGS   =
BOARD_APT      =
BOARD_RUN      =
BOARD_TIMEOUT_MULT = 1
BOARD_RAM_MB   = 4096

# Defaults that become cairn::Limits (src/core/limits.cc); a node's cairn.json
# may override each under "limits". Sizes in bytes, times in milliseconds.
LIMIT_max_connections      = 256
LIMIT_control_max_clients  = 32
LIMIT_control_frame_bytes  = 65536
LIMIT_control_idle_ms      = 30000
LIMIT_control_inflight     = 16
LIMIT_http_header_bytes    = 16384
LIMIT_http_max_headers     = 64
LIMIT_http_body_bytes      = 1048576
LIMIT_http_idle_ms         = 60000
LIMIT_lmdb_map_bytes       = 1073741824
LIMIT_lmdb_map_max_bytes   = 17179869184
LIMIT_task_history         = 1000
LIMIT_tasks_max_active     = 64
LIMIT_tasks_max_per_key    = 16
LIMIT_threadpool           = 4
LIMIT_tls_prefer_chacha    = 0
