// Package e2e runs the built ferryd and ferryctl against real Linux hosts:
// network namespaces whose interfaces are ferryd's net_tap ports.
package e2e

import (
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"syscall"
	"testing"
	"time"
)

// binDir holds ferryd and ferryctl; `make test` builds them first.
func binDir(t *testing.T) string {
	if d := os.Getenv("FERRY_BIN"); d != "" {
		return d
	}
	_, file, _, _ := runtime.Caller(0)
	return filepath.Join(filepath.Dir(file), "..", "bin")
}

// needRoot skips, saying why, where taps and namespaces cannot be made.
func needRoot(t *testing.T) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("skipped: needs root to create net_tap devices and network namespaces")
	}
	for _, tool := range []string{"ip", "ping"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Skipf("skipped: %s not installed (make deps installs it)", tool)
		}
	}
	if err := exec.Command("ip", "netns", "add", "ferry-probe").Run(); err != nil {
		t.Skip("skipped: cannot create network namespaces here:", err)
	}
	exec.Command("ip", "netns", "del", "ferry-probe").Run()
}

func run(t *testing.T, name string, args ...string) (string, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	out, err := exec.CommandContext(ctx, name, args...).CombinedOutput()
	return string(out), err
}

func must(t *testing.T, name string, args ...string) string {
	t.Helper()
	out, err := run(t, name, args...)
	if err != nil {
		t.Fatalf("%s %s: %v\n%s", name, strings.Join(args, " "), err, out)
	}
	return out
}

// netns is a Linux host in its own network namespace.
type netns struct {
	name string
}

func newNetns(t *testing.T, name string) *netns {
	t.Helper()
	exec.Command("ip", "netns", "del", name).Run()
	must(t, "ip", "netns", "add", name)
	n := &netns{name: name}
	t.Cleanup(func() { exec.Command("ip", "netns", "del", name).Run() })
	n.must(t, "ip", "link", "set", "lo", "up")
	return n
}

func (n *netns) run(t *testing.T, args ...string) (string, error) {
	t.Helper()
	return run(t, "ip", append([]string{"netns", "exec", n.name}, args...)...)
}

func (n *netns) must(t *testing.T, args ...string) string {
	t.Helper()
	out, err := n.run(t, args...)
	if err != nil {
		t.Fatalf("[%s] %s: %v\n%s", n.name, strings.Join(args, " "), err, out)
	}
	return out
}

// listenUDP is a UDP socket bound to addr in the namespace, closed when
// the test ends.
func (n *netns) listenUDP(t *testing.T, addr string) net.PacketConn {
	t.Helper()
	var pc net.PacketConn
	if err := inNetns(t, n.name, func() (err error) {
		pc, err = net.ListenPacket("udp4", addr)
		return err
	}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { pc.Close() })
	return pc
}

// router is a running ferryd.
type router struct {
	t      *testing.T
	cmd    *exec.Cmd
	socket string
	cfg    string // the configuration file it runs
	logf   string // ferryd's log file
	done   chan error
}

// startRouter runs ferryd on a config and waits for its control socket.
func startRouter(t *testing.T, config string) *router {
	t.Helper()
	return startRouterAt(t, config, "")
}

// startRouterAt is startRouter with the control socket at socket (empty:
// in the test's own directory, for "@SOCKET@" in config).
func startRouterAt(t *testing.T, config, socket string) *router {
	t.Helper()
	dir := t.TempDir()
	cfgPath := filepath.Join(dir, "ferry.yaml")
	if socket == "" {
		socket = filepath.Join(dir, "ferry.sock")
	}
	config = strings.ReplaceAll(config, "@SOCKET@", socket)
	if err := os.WriteFile(cfgPath, []byte(config), 0o644); err != nil {
		t.Fatal(err)
	}
	ferryd := filepath.Join(binDir(t), "ferryd")
	if _, err := os.Stat(ferryd); err != nil {
		t.Fatalf("%s not built (run make build): %v", ferryd, err)
	}
	logf, err := os.Create(filepath.Join(dir, "ferryd.log"))
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(ferryd, "--config", cfgPath)
	cmd.Stdout, cmd.Stderr = logf, logf
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	r := &router{t: t, cmd: cmd, socket: socket, cfg: cfgPath, logf: logf.Name(), done: make(chan error, 1)}
	go func() { r.done <- cmd.Wait() }()
	t.Cleanup(func() {
		r.stop()
		logf.Close()
		if t.Failed() {
			b, _ := os.ReadFile(logf.Name())
			t.Logf("ferryd log:\n%s", b)
		}
	})
	deadline := time.Now().Add(30 * time.Second)
	for {
		if _, err := os.Stat(socket); err == nil {
			if _, err := r.ctl("link", "show"); err == nil {
				return r
			}
		}
		select {
		case err := <-r.done:
			b, _ := os.ReadFile(logf.Name())
			r.done <- err
			t.Fatalf("ferryd exited during start: %v\n%s", err, b)
		case <-time.After(100 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			b, _ := os.ReadFile(logf.Name())
			t.Fatalf("ferryd did not open its control socket in 30s\n%s", b)
		}
	}
}

// stop sends SIGTERM and expects a clean exit.
func (r *router) stop() error {
	if r.cmd.ProcessState != nil {
		return nil
	}
	r.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case err := <-r.done:
		r.done <- err
		return err
	case <-time.After(20 * time.Second):
		r.cmd.Process.Kill()
		err := <-r.done
		r.done <- err
		return fmt.Errorf("ferryd ignored SIGTERM for 20s: %v", err)
	}
}

func (r *router) ctl(args ...string) (string, error) {
	ferryctl := filepath.Join(binDir(r.t), "ferryctl")
	ctx, cancel := context.WithTimeout(context.Background(), 120*time.Second)
	defer cancel()
	out, err := exec.CommandContext(ctx, ferryctl, append([]string{"--socket", r.socket}, args...)...).CombinedOutput()
	return string(out), err
}

func (r *router) mustCtl(args ...string) string {
	r.t.Helper()
	out, err := r.ctl(args...)
	if err != nil {
		r.t.Fatalf("ferryctl %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return out
}

// waitLink waits for a kernel interface to appear in the root namespace.
func waitLink(t *testing.T, ifname string) {
	t.Helper()
	for i := 0; i < 100; i++ {
		if _, err := run(t, "ip", "link", "show", ifname); err == nil {
			return
		}
		time.Sleep(100 * time.Millisecond)
	}
	t.Fatalf("interface %s did not appear", ifname)
}

// attach moves a tap into a namespace and configures the host side.
func attach(t *testing.T, ifname string, ns *netns, addr, gw string) {
	t.Helper()
	waitLink(t, ifname)
	must(t, "ip", "link", "set", ifname, "netns", ns.name)
	ns.must(t, "ip", "addr", "add", addr, "dev", ifname)
	ns.must(t, "ip", "link", "set", ifname, "up")
	if gw != "" {
		ns.must(t, "ip", "route", "add", "default", "via", gw)
	}
}

// uniq gives names that do not collide with a parallel run.
func uniq(prefix string) string {
	return fmt.Sprintf("%s%d", prefix, os.Getpid()%100000)
}

// pipelineCore picks a CPU for the pipeline: the last one, so the first
// keeps serving the kernel and the test.
func pipelineCore() int {
	n := runtime.NumCPU()
	if n > 1 {
		return n - 1
	}
	return 0
}

// tapConfig is a ferryd config with two net_tap ports, port0 192.0.2.1/24 on
// taps[0] and port1 198.51.100.1/24 on taps[1]; port0 and port1 add YAML
// keys to each port (indented lines), tail adds top-level keys.
func tapConfig(prefix string, taps [2]string, port0, port1, tail string) string {
	return fmt.Sprintf(`eal: ["--no-huge", "-m", "512", "--no-pci", "--file-prefix", "%s"]
cores: [%d]
api: "@SOCKET@"
ports:
  - name: port0
    dev: "net_tap0,iface=%s"
    addresses: ["192.0.2.1/24"]
%s  - name: port1
    dev: "net_tap1,iface=%s"
    addresses: ["198.51.100.1/24"]
%s%s`, uniq(prefix), pipelineCore(), taps[0], port0, taps[1], port1, tail)
}
