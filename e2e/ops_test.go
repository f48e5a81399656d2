package e2e

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

const opsTail = `routes:
  - "203.0.113.0/24 via 198.51.100.2 dev port1"
rules:
  - "from 10.1.0.0/16 lookup 100 priority 100"
neighbors:
  - "198.51.100.9 lladdr 02:00:00:00:00:09 dev port1"
redirect_number: 9
`

// SIGHUP and 'ferryctl reload' apply a changed file in place; a bad file
// or a change that needs a restart is refused and changes nothing.
func TestReload(t *testing.T) {
	needRoot(t)
	taps := [2]string{uniq("fra"), uniq("frb")}
	cfg := tapConfig("fyreload", taps, "", "    neigh: {base_reachable_time_ms: 30000}\n", opsTail)
	r := startRouter(t, cfg)
	text, _ := os.ReadFile(r.cfg)
	write := func(s string) {
		if err := os.WriteFile(r.cfg, []byte(s), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	changed := strings.NewReplacer(
		`"203.0.113.0/24 via 198.51.100.2 dev port1"`, `"203.0.113.0/24 via 198.51.100.3 dev port1"`+"\n  - \"10.20.0.0/16 via 198.51.100.2 dev port1\"",
		`"from 10.1.0.0/16 lookup 100 priority 100"`, `"from 10.2.0.0/16 lookup 200 priority 200"`,
		"redirect_number: 9", "redirect_number: 5",
		"base_reachable_time_ms: 30000", "base_reachable_time_ms: 10000",
	).Replace(string(text))
	write(changed)
	bumps0 := r.genidBumps()
	r.cmd.Process.Signal(syscall.SIGHUP)
	// SIGHUP returns before the reload is done: routes show first, the knobs
	// and the one genid bump come last.
	if !waitUntil(5*time.Second, func() bool {
		return strings.Contains(r.mustCtl("route", "show"), "203.0.113.0/24 via 198.51.100.3 dev port1") &&
			strings.Contains(r.mustCtl("knob", "show"), "redirect_number = 5\n") && r.genidBumps() != bumps0
	}) {
		t.Fatalf("SIGHUP did not reload:\n%s\n%s", r.mustCtl("route", "show"), r.mustCtl("knob", "show"))
	}
	if err := r.cmd.Process.Signal(syscall.Signal(0)); err != nil {
		t.Fatal("SIGHUP ended ferryd")
	}
	if n := r.genidBumps() - bumps0; n != 1 {
		t.Errorf("the reload bumped the genid %d times, want once", n)
	}
	show, rules, knobs := r.mustCtl("route", "show"), r.mustCtl("rule", "show"), r.mustCtl("knob", "show")
	for _, want := range []string{"10.20.0.0/16 via 198.51.100.2 dev port1"} {
		if !strings.Contains(show, want) {
			t.Errorf("after reload, route show lacks %q:\n%s", want, show)
		}
	}
	if strings.Contains(rules, "10.1.0.0/16") || !strings.Contains(rules, "200:\tfrom 10.2.0.0/16 lookup 200") {
		t.Errorf("rules after reload:\n%s", rules)
	}
	if !strings.Contains(knobs, "redirect_number = 5\n") || !strings.Contains(knobs, "port1.neigh.base_reachable_time_ms = 10000\n") {
		t.Errorf("knobs after reload:\n%s", knobs)
	}

	write(strings.Replace(changed, "10.20.0.0/16 via", "10.20.0.0/16 vai", 1))
	if out, err := r.ctl("reload"); err == nil || !strings.Contains(out, "routes[") {
		t.Errorf("reload of a bad file: %v\n%s", err, out)
	}
	write(strings.Replace(changed, "cores: [", "cores: [0, ", 1))
	if out, err := r.ctl("reload"); err == nil || !strings.Contains(out, "cores") || !strings.Contains(out, "restart") {
		t.Errorf("reload of a cores change: %v\n%s", err, out)
	}
	if got := r.mustCtl("route", "show"); got != show {
		t.Errorf("a refused reload changed the routes:\n%s", got)
	}
	write(changed)
	if out, err := r.ctl("reload"); err != nil || !strings.Contains(out, "reloaded") {
		t.Errorf("reload of an unchanged file: %v\n%s", err, out)
	}
}

// 'ferryctl save' writes a configuration that ferryd starts from with the
// same routes, rules and knobs; 'route show -o' is -batch input once
// prefixed.
func TestSaveRoundTrip(t *testing.T) {
	needRoot(t)
	taps := [2]string{uniq("fsa"), uniq("fsb")}
	r := startRouter(t, tapConfig("fysave", taps, "", "", opsTail))
	r.mustCtl("route", "add", "10.30.0.0/16", "via", "198.51.100.2", "metric", "20", "proto", "static")
	r.mustCtl("route", "add", "10.31.0.0/16", "nexthop", "via", "198.51.100.2", "weight", "3", "nexthop", "via", "192.0.2.2", "weight", "1")
	r.mustCtl("route", "add", "blackhole", "10.32.0.0/16", "table", "100")
	r.mustCtl("rule", "add", "from", "10.5.0.0/16", "iif", "port0", "lookup", "100", "priority", "150")
	r.mustCtl("neigh", "add", "198.51.100.8", "lladdr", "02:00:00:00:00:08", "dev", "port1")
	r.mustCtl("knob", "set", "forward_use_pmtu", "1")
	r.mustCtl("knob", "set", "dev", "port0", "accept_redirects", "1")
	r.mustCtl("knob", "set", "dev", "port1", "neigh.gc_thresh3", "2048")
	before := []string{r.mustCtl("route", "show", "table", "all"), r.mustCtl("rule", "show"), r.mustCtl("knob", "show"), r.mustCtl("neigh", "show", "nud", "permanent")}
	saved := filepath.Join(t.TempDir(), "saved.yaml")
	r.mustCtl("save", saved)
	oneline := r.mustCtl("-o", "route", "show")
	if err := r.stop(); err != nil {
		t.Fatal(err)
	}
	text, err := os.ReadFile(saved)
	if err != nil {
		t.Fatal(err)
	}
	again := regexp.MustCompile(`(?m)^api: .*$`).ReplaceAllString(string(text), `api: "@SOCKET@"`)
	r2 := startRouter(t, again)
	after := []string{r2.mustCtl("route", "show", "table", "all"), r2.mustCtl("rule", "show"), r2.mustCtl("knob", "show"), r2.mustCtl("neigh", "show", "nud", "permanent")}
	for i, what := range []string{"route show table all", "rule show", "knob show", "neigh show nud permanent"} {
		if before[i] != after[i] {
			t.Errorf("%s differs after save and restart:\nbefore:\n%s\nafter:\n%s\nsaved:\n%s", what, before[i], after[i], text)
		}
	}
	if strings.Contains(oneline, "\n\t") || !strings.Contains(oneline, "10.31.0.0/16 nexthop via 198.51.100.2 dev port1 weight 3 nexthop via 192.0.2.2 dev port0 weight 1") {
		t.Fatalf("route show -o:\n%s", oneline)
	}
	var batch strings.Builder
	for _, l := range strings.Split(strings.TrimSpace(oneline), "\n") {
		batch.WriteString("route replace " + l + "\n")
	}
	bf := filepath.Join(t.TempDir(), "routes.batch")
	os.WriteFile(bf, []byte(batch.String()), 0o644)
	if out, err := r2.ctl("-batch", bf); err != nil {
		t.Fatalf("route show -o output as -batch input: %v\n%s\n%s", err, out, batch.String())
	}
	if got := r2.mustCtl("route", "show", "table", "all"); got != before[0] {
		t.Fatalf("the batch changed the routes:\n%s", got)
	}
}

func (r *router) genidBumps() uint64 {
	var st struct {
		Bumps uint64 `json:"genid_bumps"`
	}
	json.Unmarshal([]byte(r.mustCtl("-json", "cache", "stats")), &st)
	return st.Bumps
}

// scrape reads one sample of the metrics endpoint; -1 when absent.
func scrape(t *testing.T, url, series string) float64 {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	for _, l := range strings.Split(string(body), "\n") {
		if strings.HasPrefix(l, series+" ") {
			v, err := strconv.ParseFloat(strings.Fields(l)[1], 64)
			if err == nil {
				return v
			}
		}
	}
	return -1
}

// The Prometheus endpoint serves every counter of ferryctl stats, and its
// values move while traffic flows.
func TestMetricsEndpoint(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	_, a, _, _ := twoHosts(t, fmt.Sprintf("metrics: %s\n", addr))
	url := "http://" + addr + "/metrics"
	fwd := `ferry_pipeline_packets_total{core="0",counter="forwarded"}`
	before := scrape(t, url, fwd)
	if before < 0 {
		t.Fatalf("no %s in the endpoint", fwd)
	}
	if out, err := a.run(t, "ping", "-c", "20", "-i", "0.02", "-W", "2", "198.51.100.2"); err != nil {
		t.Fatalf("ping: %v\n%s", err, out)
	}
	time.Sleep(200 * time.Millisecond)
	if after := scrape(t, url, fwd); after < before+40 {
		t.Fatalf("%s went from %v to %v over 20 pings there and back", fwd, before, after)
	}
	for _, series := range []string{
		`ferry_port_packets_total{direction="rx",port="port0"}`,
		`ferry_queue_packets_total{direction="tx",port="port1",queue="0"}`,
		`ferry_pipeline_drops_total{core="0",reason="drop_no_route"}`,
		`ferry_neighbours{state="REACHABLE"}`,
		`ferry_fib_routes{table="main"}`,
		`ferry_fib_lookup_bytes`,
		`ferry_fib_slow_walks_total`,
		`ferry_fib_used_blocks`,
		`ferry_genid_bumps_total`,
		`go_gc_duration_seconds_count`,
	} {
		if v := scrape(t, url, series); v < 0 {
			t.Errorf("no %s", series)
		}
	}
}

// ctlAs runs ferryctl as an unprivileged user (nobody) in groups.
func (r *router) ctlAs(groups []uint32, args ...string) (string, error) {
	cmd := exec.Command(filepath.Join(binDir(r.t), "ferryctl"), append([]string{"--socket", r.socket}, args...)...)
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: 65534, Gid: 65534, Groups: groups}}
	out, err := cmd.CombinedOutput()
	return string(out), err
}

// api_group and api_readonly_group let other users in, by their
// credentials; a huge request is refused without harm.
func TestControlSocketAccess(t *testing.T) {
	needRoot(t)
	dir, err := os.MkdirTemp("", "ferry-access")
	if err != nil {
		t.Fatal(err)
	}
	defer os.RemoveAll(dir)
	os.Chmod(dir, 0o755) // other users reach the socket through it
	sock := filepath.Join(dir, "ferry.sock")
	taps := [2]string{uniq("faa"), uniq("fab")}
	cfg := strings.Replace(tapConfig("fyaccess", taps, "", "", "api_group: adm\napi_readonly_group: sys\n"), `api: "@SOCKET@"`, "api: "+sock, 1)
	r := startRouterAt(t, cfg, sock)
	const adm, sys = 4, 3
	if out, err := r.ctlAs([]uint32{adm}, "route", "add", "10.40.0.0/16", "via", "198.51.100.2"); err != nil {
		t.Fatalf("api_group member: route add: %v\n%s", err, out)
	}
	if out, err := r.ctlAs([]uint32{sys}, "route", "show"); err != nil || !strings.Contains(out, "10.40.0.0/16") {
		t.Fatalf("read-only member: route show: %v\n%s", err, out)
	}
	out, err := r.ctlAs([]uint32{sys}, "route", "del", "10.40.0.0/16")
	var ee *exec.ExitError
	if !errors.As(err, &ee) || ee.ExitCode() != 1 || !strings.Contains(out, "read-only") {
		t.Fatalf("read-only member: route del: %v\n%s", err, out)
	}
	if out, err := r.ctlAs(nil, "stats"); err == nil || !strings.Contains(out, "permission denied") {
		t.Fatalf("a user in neither group: %v\n%s", err, out)
	}
	// A request line over 1 MiB is refused; others are served meanwhile.
	c, err := net.Dial("unix", sock)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	go c.Write(append([]byte(`{"args":["`), bytes.Repeat([]byte("x"), 2<<20)...))
	stalled, _ := net.Dial("unix", sock) // sends nothing
	defer stalled.Close()
	if out := r.mustCtl("route", "show"); !strings.Contains(out, "10.40.0.0/16") {
		t.Fatalf("another client while one stalls:\n%s", out)
	}
	c.SetReadDeadline(time.Now().Add(10 * time.Second))
	reply, _ := io.ReadAll(c)
	if !strings.Contains(string(reply), "longer than") {
		t.Fatalf("reply to a 2 MiB request: %.200s", reply)
	}
}
