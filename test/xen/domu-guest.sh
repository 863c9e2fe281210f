# Run by /init inside the domU that test/xen/domu.test.js starts: the client side of the
# two-domain test. It reports through XenStore (data/xway-test under its own domain), since
# nobody reads this domain's console unless the test fails.
timeout 200 node test/xen/fixtures/domu-client.js > /tmp/domu-client.log 2>&1
echo "domu-client exit $?"
cat /tmp/domu-client.log
