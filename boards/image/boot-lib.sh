# The boot's watchdog and status LED, shared by the initramfs's /init, the
# root slot's /sbin/init and cairn-reboot (busybox sh; sourced, not run).
# The functions keep their state in the calling shell's variables
# (watchdog, bootpet, led, wd_armed, wd_petter, wd_bound): call them from
# one shell; a subshell gets a copy.
#
# Settings (boot_settings reads them from the kernel command line):
#   cairn.watchdog=N  the initramfs arms the hardware watchdog for N seconds;
#   cairn.bootpet=M   and the boot pets it (every N/5 s, at least 1 s) until
#                     cairnd is started, for at most M seconds of uptime. For
#                     boards whose watchdog's longest timeout is shorter than
#                     a boot (rpi4: bcm2835-wdt, 15 s). After M s of uptime
#                     without cairnd, nothing pets it: a boot hung anywhere
#                     (the kernel, a tool init runs) is reset N s later.
#   cairn.led=NAME    the LED (a name under /sys/class/leds, or a directory)
#                     that shows the boot pattern, until cairnd takes it over.
# The hand-over: a watchdog device opens only once. The petter holds it open
# (writing a zero byte a pet, never the magic 'V', so closing it leaves it
# armed); wd_handover ends the petter, waits until its descriptor is closed,
# pets once more from a fresh open and close (while the bound has not passed)
# and returns; the caller then starts cairnd, which opens the device and
# pets it from then on (docs/boards.md). Nothing else opens the device while
# cairnd runs, so cairnd's open cannot find it busy.
#
# The paths (and the watchdog applet, which the test runs under qemu-user
# through a wrapper) are variables so test/image/boot_lib_test.py can run these
# functions against plain files (hence >>: appending is the same as writing
# to a character device, and a plain file keeps every pet).
CAIRN_WATCHDOG_DEV=${CAIRN_WATCHDOG_DEV:-/dev/watchdog}
CAIRN_LED_ROOT=${CAIRN_LED_ROOT:-/sys/class/leds}
CAIRN_UPTIME=${CAIRN_UPTIME:-/proc/uptime}
CAIRN_CMDLINE=${CAIRN_CMDLINE:-/proc/cmdline}
CAIRN_WATCHDOG_TOOL=${CAIRN_WATCHDOG_TOOL:-watchdog}

# Sets watchdog, bootpet and led from the kernel command line (the last of
# each word wins; a value that is not a whole number of seconds is ignored).
# The caller sets wd_armed=1 once it knows the device is there (a character
# device): nothing here opens a path that is not, which would make a plain
# file in /dev that cairnd would then take for the watchdog.
boot_settings() {
  watchdog= bootpet= led=
  for w in $(cat "$CAIRN_CMDLINE" 2>/dev/null); do
    case "$w" in
      cairn.watchdog=*) watchdog=${w#cairn.watchdog=} ;;
      cairn.bootpet=*) bootpet=${w#cairn.bootpet=} ;;
      cairn.led=*) led=${w#cairn.led=} ;;
    esac
  done
  case "$watchdog" in ''|*[!0-9]*|0) watchdog= ;; esac
  case "$bootpet" in ''|*[!0-9]*|0) bootpet= ;; esac
  wd_petter= wd_bound= wd_armed=
}

# Prints the whole seconds the kernel has been up.
uptime_s() {
  read -r up _ < "$CAIRN_UPTIME"
  echo "${up%%.*}"
}

# True while the boot may still pet the watchdog: armed (wd_armed), petting
# configured, and the bound not yet reached.
wd_may_pet() {
  [ -n "$wd_armed" ] && [ -n "$watchdog" ] && [ -n "$bootpet" ] || return 1
  read -r up _ < "$CAIRN_UPTIME" || return 1
  [ "${up%%.*}" -lt "$bootpet" ]
}

# Starts the petter in the background if the boot pets: busybox's watchdog
# applet (pid in wd_petter), which holds the device open and writes a zero
# byte every N/5 s (at least 1 s), and a loop (pid in wd_bound) that ends it
# with SIGKILL once the uptime reaches the bound, saying so with the caller's
# log function. SIGKILL, never SIGTERM: on SIGTERM the applet writes the
# magic 'V', which would disarm the watchdog. The applet is one process with
# no children, so once it is gone nothing holds the device (a shell loop
# holding it would leave a copy in each sleep it forks). -T sets the period
# the initramfs armed again.
wd_pet_start() {
  wd_may_pet || return 0
  every=$((watchdog / 5))
  [ "$every" -ge 1 ] || every=1
  "$CAIRN_WATCHDOG_TOOL" -F -T "$watchdog" -t "$every" "$CAIRN_WATCHDOG_DEV" 2>/dev/null &
  wd_petter=$!
  (
    while wd_may_pet; do sleep 1; done
    kill -KILL "$wd_petter" 2>/dev/null &&
      log "watchdog: boot petting stopped at $bootpet s of uptime without cairnd: the box resets in $watchdog s unless cairnd takes the watchdog over"
  ) &
  wd_bound=$!
}

# Ends the petter (if any) and waits, at most 5 s, until it no longer holds
# the device: a killed process's descriptors are closed before it is a
# zombie, whose fd directory is empty.
wd_pet_stop() {
  [ -n "$wd_petter" ] || return 0
  kill -KILL "$wd_bound" "$wd_petter" 2>/dev/null
  n=0
  while [ -n "$(ls "/proc/$wd_petter/fd" 2>/dev/null)" ] && [ $n -lt 50 ]; do
    n=$((n + 1))
    sleep 0.1
  done
  wd_petter= wd_bound=
}

# Before cairnd starts (also before each restart): the petter ends and, while
# the bound has not passed, the device is petted once more; cairnd then has a
# whole watchdog period to open it. Prints nothing; returns 0 if it petted.
wd_handover() {
  wd_pet_stop
  wd_may_pet || return 1
  printf x >> "$CAIRN_WATCHDOG_DEV" 2>/dev/null
}

# The boot pattern on the LED cairn.led names: the kernel's timer trigger,
# 100 ms on and 100 ms off (5 Hz), distinct from the board's own trigger
# (rpi4's ACT: heartbeat) and from cairnd's patterns (steady, 1 Hz, off).
# cairnd sets the trigger to none when it takes the LED over.
led_boot() {
  [ -n "$led" ] || return 0
  case "$led" in
    /*) d=$led ;;
    *) d=$CAIRN_LED_ROOT/$led ;;
  esac
  if [ ! -e "$d/trigger" ]; then
    log "no LED $led: no boot pattern"
    return 1
  fi
  if ! echo timer > "$d/trigger" 2>/dev/null || ! echo 100 > "$d/delay_on" 2>/dev/null ||
     ! echo 100 > "$d/delay_off" 2>/dev/null; then
    log "LED $led: the timer trigger did not take (ledtrig-timer not loaded?)"
    return 1
  fi
  return 0
}
