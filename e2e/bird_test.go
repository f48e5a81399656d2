package e2e

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// birdd is a BIRD daemon in a namespace.
type birdd struct {
	t    *testing.T
	ns   *netns
	dir  string
	conf string
	cmd  *exec.Cmd
}

func newBird(t *testing.T, ns *netns, conf string) *birdd {
	t.Helper()
	if _, err := exec.LookPath("bird"); err != nil {
		t.Skip("skipped: bird not installed (make deps installs bird2)")
	}
	dir := t.TempDir()
	b := &birdd{t: t, ns: ns, dir: dir, conf: filepath.Join(dir, "bird.conf")}
	if err := os.WriteFile(b.conf, []byte(conf), 0o644); err != nil {
		t.Fatal(err)
	}
	b.start()
	t.Cleanup(func() { b.kill() })
	return b
}

func (b *birdd) sock() string { return filepath.Join(b.dir, "bird.ctl") }

func (b *birdd) start() {
	b.t.Helper()
	log, _ := os.OpenFile(filepath.Join(b.dir, "bird.log"), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	b.cmd = exec.Command("ip", "netns", "exec", b.ns.name, "bird", "-f", "-c", b.conf, "-s", b.sock(), "-P", filepath.Join(b.dir, "bird.pid"))
	b.cmd.Stdout, b.cmd.Stderr = log, log
	b.cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := b.cmd.Start(); err != nil {
		b.t.Fatal(err)
	}
	if !waitUntil(10*time.Second, func() bool { _, err := b.ctl("show", "status"); return err == nil }) {
		out, _ := os.ReadFile(filepath.Join(b.dir, "bird.log"))
		b.t.Fatalf("bird in %s did not start:\n%s", b.ns.name, out)
	}
}

func (b *birdd) ctl(args ...string) (string, error) {
	out, err := exec.Command("birdc", append([]string{"-s", b.sock()}, args...)...).CombinedOutput()
	return string(out), err
}

// kill ends BIRD at once: what it put in the kernel stays.
func (b *birdd) kill() {
	if b.cmd != nil && b.cmd.Process != nil {
		b.cmd.Process.Kill()
		b.cmd.Wait()
		b.cmd = nil
	}
}

// down stops BIRD as an operator would: it withdraws what it exported.
func (b *birdd) down() {
	b.ctl("down")
	if b.cmd != nil {
		done := make(chan struct{})
		go func() { b.cmd.Wait(); close(done) }()
		select {
		case <-done:
		case <-time.After(10 * time.Second):
			b.cmd.Process.Kill()
			<-done
		}
		b.cmd = nil
	}
}

// birdTimers make sessions come up in seconds, not minutes.
const birdTimers = `    hold time 6; keepalive time 2;
    connect delay time 1; connect retry time 2; error wait time 1, 2;
`

// A routing daemon in the control namespace drives the data plane: BIRD
// there peers over eBGP, across ferry's port1 (TCP through the kernel
// path), with BIRD in host B, which announces 1,000 prefixes; BIRD puts
// them in its kernel's table and ferry mirrors them.
func TestBIRDDrivesFerry(t *testing.T) {
	r, a, b, c := kernelPathRouter(t, "")
	b.must(t, "ip", "addr", "add", "10.200.0.1/32", "dev", "lo")
	var static strings.Builder
	for i := 0; i < 1000; i++ {
		fmt.Fprintf(&static, "    route 10.%d.%d.0/24 blackhole;\n", 200+i/250, i%250)
	}
	birdB := newBird(t, b, `router id 198.51.100.2;
protocol device {}
protocol static announced {
    ipv4;
`+static.String()+`}
protocol bgp ferry {
    local 198.51.100.2 as 65002;
    neighbor 198.51.100.1 as 65001;
`+birdTimers+`    ipv4 { import none; export all; };
}
`)
	birdCConf := `router id 198.51.100.1;
protocol device { scan time 2; }
protocol kernel {
    ipv4 { import none; export all; };
}
protocol bgp hostb {
    local 198.51.100.1 as 65001;
    neighbor 198.51.100.2 as 65002;
` + birdTimers + `    ipv4 { import all; export none; };
}
`
	birdC := newBird(t, c, birdCConf)
	mirrored := func(n int) func() bool {
		return func() bool { return r.cpStatus().Routes >= n }
	}
	gone := func() bool { return r.cpStatus().Routes == 0 }
	if !waitUntil(60*time.Second, mirrored(1000)) {
		out, _ := birdC.ctl("show", "protocols", "all", "hostb")
		t.Fatalf("1,000 prefixes not mirrored: %+v\n%s\n%s", r.cpStatus(), out, r.mustCtl("stats"))
	}
	if got := r.mustCtl("route", "show", "proto", "bird"); !strings.Contains(got, "10.200.0.0/24 via 198.51.100.2 dev port1 proto bird") {
		t.Fatalf("route show proto bird:\n%.500s", got)
	}

	t.Run("ForwardedByThePipeline", func(t *testing.T) {
		before := r.coreCounters()[0]["forwarded"]
		if out, err := a.run(t, "ping", "-c", "3", "-i", "0.2", "-W", "2", "10.200.0.1"); err != nil {
			t.Fatalf("ping over the BGP route: %v\n%s", err, out)
		}
		ln := echoServer(t, b, "10.200.0.1:7")
		defer ln.Close()
		tcpEcho(t, a, "10.200.0.1:7", 64<<10)
		if fwd := r.coreCounters()[0]["forwarded"] - before; fwd < 40 {
			t.Fatalf("the pipeline forwarded %d packets", fwd)
		}
	})

	t.Run("WithdrawalUnreachable", func(t *testing.T) {
		if out, err := birdB.ctl("disable", "announced"); err != nil {
			t.Fatalf("birdc disable: %v\n%s", err, out)
		}
		if !waitUntil(30*time.Second, gone) {
			t.Fatalf("withdrawn prefixes still mirrored: %+v", r.cpStatus())
		}
		out, _ := a.run(t, "ping", "-c", "1", "-W", "2", "10.200.0.1")
		if !strings.Contains(out, "From 192.0.2.1") || !strings.Contains(out, "Net Unreachable") {
			t.Fatalf("after the withdrawal, want net unreachable from ferry:\n%s", out)
		}
		birdB.ctl("enable", "announced")
		if !waitUntil(30*time.Second, mirrored(1000)) {
			t.Fatalf("announced again, not mirrored: %+v", r.cpStatus())
		}
	})

	t.Run("PeerRestartRelearns", func(t *testing.T) {
		birdB.kill()
		if !waitUntil(30*time.Second, gone) {
			t.Fatalf("routes of a dead peer still mirrored after its hold time: %+v", r.cpStatus())
		}
		birdB.start()
		if !waitUntil(60*time.Second, mirrored(1000)) {
			t.Fatalf("restarted peer's routes not mirrored: %+v", r.cpStatus())
		}
		if out, err := a.run(t, "ping", "-c", "1", "-W", "2", "10.200.0.1"); err != nil {
			t.Fatalf("ping after the peer came back: %v\n%s", err, out)
		}
	})

	t.Run("StaticRouteBesideBIRD", func(t *testing.T) {
		c.must(t, "ip", "route", "add", "10.250.0.0/16", "via", "198.51.100.2", "proto", "static")
		if !waitUntil(5*time.Second, func() bool {
			return strings.Contains(r.mustCtl("route", "show", "proto", "static"), "10.250.0.0/16 via 198.51.100.2")
		}) {
			t.Fatal("static route in the control namespace not mirrored")
		}
	})

	t.Run("ControlPlaneDaemonKilledOrStopped", func(t *testing.T) {
		// Killed: its routes stay in the kernel, so they stay in ferry.
		birdC.kill()
		time.Sleep(time.Second)
		if st := r.cpStatus(); st.Routes < 1000 {
			t.Fatalf("killed daemon's kernel routes were dropped from ferry: %+v", st)
		}
		if out, err := a.run(t, "ping", "-c", "1", "-W", "2", "10.200.0.1"); err != nil {
			t.Fatalf("ping after the control plane daemon died: %v\n%s", err, out)
		}
		// Started again and stopped cleanly: it removes its routes from
		// the kernel, and ferry follows.
		birdC.start()
		// The killed daemon's routes are still mirrored: what says the new
		// one holds them (and withdraws them when stopped) is its session.
		established := func() bool {
			out, _ := birdC.ctl("show", "protocols", "hostb")
			return strings.Contains(out, "Established")
		}
		if !waitUntil(60*time.Second, func() bool { return mirrored(1001)() && established() }) {
			out, _ := birdC.ctl("show", "protocols", "all", "hostb")
			t.Fatalf("restarted daemon: %+v\n%s", r.cpStatus(), out)
		}
		birdC.down()
		if !waitUntil(30*time.Second, func() bool { return r.cpStatus().Routes == 1 }) {
			t.Fatalf("stopped daemon's routes still mirrored (want only the static one): %+v", r.cpStatus())
		}
	})
}
