# Run by /init inside a domU that test/xen/domu.test.js starts. Its arguments come from the kernel
# command line (xway_args=a,b,c); it reports through XenStore (see fixtures/domu.js).
args=$(sed -n 's/.*xway_args=\([^ ]*\).*/\1/p' /proc/cmdline | tr ',' ' ')
for i in 1 2 3; do
  node -e 'console.log("probe-node ok")'; echo "probe-node exit $?"
  node -e 'const a = require("/pkg/native/build/Release/xway_native.node"); console.log("probe-addon", a.xenAvailable()); const s = new a.XenStore(() => {}); console.log("probe-xs", s.read("domid")); s.close()'; echo "probe-addon exit $?"
done
timeout 300 node test/xen/fixtures/domu.js $args > /tmp/domu.log 2>&1
rc=$?
echo "domu.js exit $rc"
[ $rc -gt 128 ] && dmesg | tail -n 20
cat /tmp/domu.log
sleep 2
