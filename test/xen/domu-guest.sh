# Run by /init inside a domU that a test in test/xen/ starts. Its arguments come from the kernel
# command line: xway_ip=ADDRESS (the guest's address on the harness's bridge, 192.0.2.0/24) and
# xway_args=a,b,c (fixtures/domu.js's arguments, or "agent": fixtures/agent.js, which takes its
# orders from dom0 over TCP). It reports through XenStore (domu.js) or its control port (agent.js).
cmdline=$(cat /proc/cmdline)
args=$(echo "$cmdline" | sed -n 's/.*xway_args=\([^ ]*\).*/\1/p' | tr ',' ' ')
ip=$(echo "$cmdline" | sed -n 's/.*xway_ip=\([^ ]*\).*/\1/p')
if [ -n "$ip" ]; then
  # netfront connects once dom0's netback and the vif hotplug script are done.
  for i in $(seq 1 100); do [ -e /sys/class/net/eth0 ] && break; sleep 0.2; done
  ip addr add "$ip/24" dev eth0 && ip link set eth0 up || echo "domu: eth0 set-up failed"
fi
case $args in
  agent*) node test/xen/fixtures/agent.js $ip > /tmp/domu.log 2>&1 ;;
  *) timeout 300 node test/xen/fixtures/domu.js $args > /tmp/domu.log 2>&1 ;;
esac
rc=$?
echo "domu exit $rc"
[ $rc -gt 128 ] && dmesg | tail -n 20
cat /tmp/domu.log
sleep 2
