"""The metadata service (Firecracker's MMDS): the API's store and
configuration (PUT/PATCH/GET /mmds, PUT /mmds/config, --metadata,
--mmds-size-limit), and a guest fetching its metadata with wget over a
user-mode NIC and a TAP NIC, V1 and V2 (session tokens), after a PATCH from
the host; a NIC not listed does not reach it (its frames go to the TAP)."""
import json
import os
import shlex

from framework import (ember_run, expect, expect_ember_rc, expect_no_output, expect_output,
                       guest_cmdline, guest_test, host_test, job)
from test_api import API_HELPERS, with_servers
from test_net import HELPERS, background, in_netns

METADATA = {"latest": {"meta-data": {"ami-id": "ami-12345678", "hostname": "vm-1"},
                       "user-data": "#cloud-config"}, "n": 5}


def fault(body):
    return body["fault_message"] if isinstance(body, dict) else body


@host_test("mmds: the store through the API (PUT replaces, PATCH merges per RFC 7386, GET, "
           "the size limit answered 413) and PUT /mmds/config's checks, as Firecracker's")
def mmds_api(ctx):
    def run(srv):
        st, body = srv.req("GET", "/mmds")
        expect((st, body) == (200, {}), f"GET /mmds before a PUT: {st} {body}")
        st, body = srv.req("PATCH", "/mmds", {"a": 1})
        expect(st == 400 and fault(body) ==
               "MMDS error: The MMDS data store is not initialized.", f"early PATCH: {st} {body}")
        st, body = srv.req("PUT", "/mmds", {"b": {"c": "d", "e": [1, 2]}, "a": "x"})
        expect(st == 204, f"PUT /mmds: {st} {body}")
        st, body = srv.req("PATCH", "/mmds", {"b": {"c": None, "f": {"g": True}}, "h": "i"})
        expect(st == 204, f"PATCH /mmds: {st} {body}")
        st, body = srv.req("GET", "/mmds")
        want = {"a": "x", "b": {"e": [1, 2], "f": {"g": True}}, "h": "i"}
        expect((st, body) == (200, want), f"after the merge patch: {st} {body}")
        st, body = srv.req("PUT", "/mmds", {"big": "x" * 300})
        expect(st == 413 and fault(body) ==
               "MMDS limit exceeded error: The MMDS patch request doesn't fit.",
               f"a PUT past --mmds-size-limit: {st} {body}")
        st, body = srv.req("PATCH", "/mmds", {"big": "x" * 300})
        expect(st == 413, f"a PATCH past the limit: {st} {body}")
        st, body = srv.req("GET", "/mmds")
        expect(body == want, f"the store after refused requests: {body}")
        st, body = srv.req("PUT", "/mmds", "[1, ")
        expect(st == 400, f"malformed JSON: {st} {body}")
        # The configuration names existing interfaces and a link-local address.
        st, body = srv.req("PUT", "/mmds/config", {"network_interfaces": []})
        expect(st == 400 and "is empty" in fault(body), f"no interfaces: {st} {body}")
        st, body = srv.req("PUT", "/mmds/config", {"network_interfaces": ["eth0"]})
        expect(st == 400 and "does not correspond to any existing network interface"
               in fault(body), f"an unknown interface: {st} {body}")
        st, body = srv.req("PUT", "/network-interfaces/eth0",
                           {"iface_id": "eth0", "host_dev_name": "tap-mmds0"})
        expect(st == 204, f"PUT /network-interfaces/eth0: {st} {body}")
        st, body = srv.req("PUT", "/mmds/config", {"network_interfaces": ["eth0"],
                                                   "ipv4_address": "1.1.1.1"})
        expect(st == 400 and "The MMDS IPv4 address is not link local." in fault(body),
               f"a routable address: {st} {body}")
        st, body = srv.req("PUT", "/mmds/config", {"network_interfaces": ["eth0"],
                                                   "version": "V3"})
        expect(st == 400, f"version V3: {st} {body}")
        st, body = srv.req("PUT", "/mmds/config", {"network_interfaces": ["eth0"],
                                                   "version": "V2",
                                                   "ipv4_address": "169.254.169.250"})
        expect(st == 204, f"a good configuration: {st} {body}")
        st, body = srv.req("GET", "/vm/config")
        expect(body["mmds-config"] == {"version": "V2", "network_interfaces": ["eth0"],
                                       "ipv4_address": "169.254.169.250",
                                       "imds_compat": False},
               f"GET /vm/config's mmds-config: {body['mmds-config']}")
    with_servers(ctx, run, extra=("--mmds-size-limit", "200"))


@host_test("mmds: --metadata FILE fills the store (a malformed file is refused with the reason)")
def mmds_metadata_option(ctx):
    from test_cli import expect_setup_error
    meta = os.path.join(ctx.tmp, "metadata.json")
    with open(meta, "w") as f:
        json.dump(METADATA, f)

    def run(srv):
        st, body = srv.req("GET", "/mmds")
        expect((st, body) == (200, METADATA), f"GET /mmds after --metadata: {st} {body}")
    with_servers(ctx, run, extra=("--metadata", meta))
    bad = os.path.join(ctx.tmp, "bad-metadata.json")
    with open(bad, "w") as f:
        f.write('{"latest": ')
    expect_setup_error(ctx, ["--api-sock", os.path.join(ctx.tmp, "m.sock"), "--metadata", bad],
                       r"--metadata: metadata file .*bad-metadata\.json: malformed JSON")
    expect_setup_error(ctx, ["--api-sock", os.path.join(ctx.tmp, "m.sock"), "--metadata", meta,
                             "--mmds-size-limit", "10"], r"MMDS limit exceeded")


# The guest's side: busybox wget for GETs (it sends headers with --header),
# nc with a hand-made request where wget cannot (PUT, the status line).
GUEST_FNS = r'''
M=169.254.169.254
req() { printf "$1 $2 HTTP/1.1\r\nHost: x\r\n$3Connection: close\r\n\r\n" | nc $M 80; echo; }
'''

GUEST_V1 = GUEST_FNS + r'''
echo "ami $(wget -q -O - http://$M/latest/meta-data/ami-id)"
wget -q -O - http://$M/latest/meta-data/ | tr '\n' ' ' | sed 's/^/listing /'; echo
wget -q -O - --header 'Accept: application/json' http://$M/latest/meta-data | sed 's/^/json /'; echo
echo guest-ready
i=0; until [ "$(wget -q -O - http://$M/latest/patched 2>/dev/null)" = yes ]; do
    i=$((i+1)); [ $i -gt 100 ] && break; usleep 300000; done
echo "patched $(wget -q -O - http://$M/latest/patched)"
req GET /n '' | head -1 | sed 's/^/number /'
req GET /nothing '' | sed -n '1p;$p' | tr '\r\n' '  ' | sed 's/^/missing /'; echo
req DELETE /n '' | head -1 | sed 's/^/delete /'
'''

# The token T outlives the flood (TTL 3600): in the nested harness the flood
# took over a minute and a 60 s token expired before the last request.
GUEST_V2 = GUEST_FNS + r'''
req GET /latest/user-data '' | sed -n '1p;$p' | tr '\r\n' '  ' | sed 's/^/no-token /'; echo
req PUT /latest/api/token 'X-metadata-token-ttl-seconds: 0\r\n' | sed -n '1p;$p' | tr '\r\n' '  ' | sed 's/^/ttl-0 /'; echo
req PUT /latest/api/token 'X-metadata-token-ttl-seconds: soon\r\n' | sed -n '$p' | sed 's/^/ttl-soon /'
req PUT /latest/api/token '' | head -1 | sed 's/^/no-ttl /'
T=$(req PUT /latest/api/token 'X-metadata-token-ttl-seconds: 3600\r\n' | tail -n 1)
echo "token-length ${#T}"
echo "user-data $(wget -q -O - --header "X-metadata-token: $T" http://$M/latest/user-data)"
req GET /latest/user-data 'X-metadata-token: bad\r\n' | sed -n '1p;$p' | tr '\r\n' '  ' | sed 's/^/bad-token /'; echo
T1=$(req PUT /latest/api/token 'X-aws-ec2-metadata-token-ttl-seconds: 1\r\n' | tail -n 1)
sleep 2
req GET /n "X-aws-ec2-metadata-token: $T1\r\n" | head -1 | sed 's/^/expired /'
# A flood: 100 idle connections, 60 unfinished requests, 2 MB of junk.
i=0; while [ $i -lt 100 ]; do (sleep 20 | nc $M 80 >/dev/null 2>&1 &); i=$((i+1)); done
i=0; while [ $i -lt 60 ]; do (printf 'GET /x HTTP/1.1\r\nX: ' | nc $M 80 >/dev/null 2>&1 &); i=$((i+1)); done
head -c 2000000 /dev/zero | nc $M 80 | head -1 | sed 's/^/junk /'
echo "after-flood $(wget -q -O - --header "X-metadata-token: $T" http://$M/latest/user-data)"
'''


@guest_test("mmds over user-mode networking: wget from the guest, V1 (IMDS listing, JSON, a "
            "PATCH from the host seen at once, Firecracker's errors) and V2 (session tokens), "
            "and a guest flooding the service",
            batch="mmds")
def mmds_user():
    script = API_HELPERS + (
        f"cat > md.json <<'EOF'\n{json.dumps(METADATA)}\nEOF\n" +
        background(ember_run('--api-sock api.sock --net user,mmds --mmds data="$DATA/md.json"',
                             guest_cmd=GUEST_V1)) +
        "wait_for guest-ready out.txt\n"
        "api -X PATCH http://x/mmds -d '{\"latest\": {\"patched\": \"yes\"}}' "
        "| sed 's/^/host-patch /'\n"
        "wait_for 'ember rc=' out.txt; cat out.txt\n" +
        ember_run('--net user,mmds --mmds version=V2,data="$DATA/md.json"', guest_cmd=GUEST_V2))

    def check(j):
        expect_ember_rc(j, 0)
        expect_output(j, r"^ami ami-12345678$", "a leaf as plain text")
        expect_output(j, r"^listing ami-id hostname ?$", "an object as an IMDS listing")
        expect_output(j, r'^json \{"ami-id":"ami-12345678","hostname":"vm-1"\}$',
                      "JSON with Accept: application/json")
        expect_output(j, r"^host-patch  \[204\]$", "the host's PATCH")
        expect_output(j, r"^patched yes$", "the patch seen by the guest")
        expect_output(j, r"^number HTTP/1.1 501", "a number cannot be IMDS text (501)")
        expect_output(j, r"^missing HTTP/1.1 404 Not Found.*Resource not found: /nothing\. $",
                      "404 with Firecracker's words")
        expect_output(j, r"^delete HTTP/1.1 405", "other methods: 405")
        expect_output(j, r"^no-token HTTP/1.1 401 Unauthorized.*No MMDS token provided",
                      "V2 without a token: 401")
        expect_output(j, r"^ttl-0 HTTP/1.1 400 .*Invalid time to live value provided for token: "
                         r"0\. Please provide a value between 1 and 21600\.", "a TTL of 0")
        expect_output(j, r"^ttl-soon Invalid header\. Reason: Invalid value\. "
                         r"Key:X-metadata-token-ttl-seconds; Value:soon$", "a TTL not a number")
        expect_output(j, r"^no-ttl HTTP/1.1 400", "a token request without a TTL")
        expect_output(j, r"^token-length 64$", "a token")
        expect_output(j, r"^user-data #cloud-config$", "V2 with the token")
        expect_output(j, r"^bad-token HTTP/1.1 401 .*MMDS token not valid\.", "a bad token")
        expect_output(j, r"^expired HTTP/1.1 401", "an expired token")
        expect_output(j, r"^junk HTTP/1.1 400", "2 MB of junk: 400")
        expect_output(j, r"^after-flood #cloud-config$", "the service answering after a flood")
    return job("mmds-user", script, timeout=240), check


GUEST_TAP = r'''
ifconfig eth0 192.168.77.2 netmask 255.255.255.0 up
ifconfig eth1 192.168.78.2 netmask 255.255.255.0 up
ip route add 169.254.169.254 dev eth0
echo "via-eth0 $(wget -q -O - http://169.254.169.254/latest/meta-data/ami-id)"
ip route replace 169.254.169.254 dev eth1
echo "via-eth1 $(timeout 10 wget -q -O - http://169.254.169.254/latest/meta-data/ami-id)"
'''


@guest_test("mmds over TAP: the listed NIC reaches the service though the host itself has "
            "169.254.169.254 (its frames never reach the TAP); the NIC not listed reaches "
            "the host instead", batch="mmds")
def mmds_tap():
    # The host answers at the service's address too (on tap1): a frame of
    # the listed NIC that leaked to tap0 would get the host's ARP answer and
    # page ("host-side").
    body = (
        "mkdir -p www www/latest/meta-data; echo host-side > www/latest/meta-data/ami-id\n"
        f"cat > md.json <<'EOF'\n{json.dumps(METADATA)}\nEOF\n"
        "$BB tunctl -t tap0 >/dev/null; $BB tunctl -t tap1 >/dev/null\n"
        "$BB ip link set lo up; $BB ip link set tap0 up; $BB ip link set tap1 up\n"
        "$BB ip addr add 192.168.77.1/24 dev tap0\n"
        "$BB ip addr add 169.254.169.254/32 dev tap1\n"
        "$BB ip route add 192.168.78.0/24 dev tap1\n"
        "$BB httpd -f -p 169.254.169.254:80 -h \"$DATA/www\" & httpd=$!\n" +
        ember_run('--net tap=tap0,mmds --net tap=tap1 --mmds data="$DATA/md.json"',
                  guest_cmd=GUEST_TAP) + "\nkill $httpd\n")

    def check(j):
        expect_ember_rc(j, 0)
        expect_output(j, r"^via-eth0 ami-12345678$", "the service through the listed TAP NIC")
        expect_output(j, r"^via-eth1 host-side$", "the host through the NIC not listed")
        expect_no_output(j, r"^via-eth0 host-side", "a frame leaked to the TAP")
    return job("mmds-tap", in_netns(HELPERS + body), timeout=150), check


GUEST_POLL = r'''
i=0
while [ $i -lt 400 ]; do
    echo "fetch $i $(wget -q -O - http://169.254.169.254/k 2>&1 | head -n 1)"
    i=$((i+1)); usleep 300000
done
'''


@guest_test("mmds across a snapshot: the restored VM's NIC still reaches the service at its "
            "address and version, but the store starts empty (as Firecracker's) until the "
            "host puts data", batch="mmds")
def mmds_snapshot():
    cmdline = shlex.quote(guest_cmdline(GUEST_POLL))
    script = API_HELPERS + (
        "echo '{\"k\": \"before\"}' > md.json\n"
        '"$EMBER" run --api-sock api.sock --net user,mmds --mmds data="$DATA/md.json" '
        f"--cmdline {cmdline} > out.txt 2>&1 & pid=$!\n"
        "wait_for '^fetch [0-9]* before' out.txt\n"
        '"$EMBER" snapshot --api-sock api.sock --snapshot vm.state --mem vm.mem --keep-paused '
        '> snap.txt 2>&1; echo "snapshot rc=$?"; cat snap.txt\n'
        "kill $pid; wait $pid; rm -f api.sock\n"
        '"$EMBER" restore -v --snapshot vm.state --mem vm.mem --api-sock api.sock > out2.txt 2>&1 &\n'
        "wait_for 'fetch [0-9]* wget: server returned error: HTTP/1.1 404' out2.txt\n"
        "api -X PUT http://x/mmds -d '{\"k\": \"after\"}' | sed 's/^/host-put /'\n"
        "wait_for '^fetch [0-9]* after' out2.txt\n"
        "api -X PUT http://x/actions -d '{\"action_type\": \"SendCtrlAltDel\"}' >/dev/null\n"
        "wait; echo '--- restored'; cat out2.txt\n")

    def check(j):
        expect_output(j, r"^snapshot rc=0$", "the snapshot")
        expect_output(j, r"metadata service restored: its store is empty", "the restore says so")
        expect_output(j, r"^fetch \d+ wget: server returned error: HTTP/1.1 404",
                      "the restored guest reaches the service, which is empty")
        expect_output(j, r"^host-put  \[204\]$", "the host's PUT after the restore")
        expect_output(j, r"^fetch \d+ after$", "the guest sees the new data")
    return job("mmds-snapshot", script, timeout=240), check
