package e2e

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// A bad configuration is refused with one clear error and exit status 2,
// before anything (EAL, taps, sockets) is started.
func TestBadConfigExitsWithStatus2(t *testing.T) {
	ferryd := filepath.Join(binDir(t), "ferryd")
	if _, err := os.Stat(ferryd); err != nil {
		t.Fatalf("%s not built (run make build): %v", ferryd, err)
	}
	dir := t.TempDir()
	cases := map[string]struct{ text, want string }{
		"bad route": {`cores: [1]
ports:
  - name: port0
    dev: "net_null0"
    addresses: ["192.0.2.1/24"]
routes:
  - "203.0.113.0/24 via 192.0.2.9 dev port7"
`, "routes[0]"},
		"unknown key": {"cores: [1]\nportz: []\n", ":2: field portz not found"},
		"bad address": {`cores: [1]
ports:
  - {name: port0, dev: "net_null0", addresses: ["300.1.1.1/24"]}
`, "ports[0].addresses[0]"},
	}
	for name, c := range cases {
		t.Run(name, func(t *testing.T) {
			path := filepath.Join(dir, strings.ReplaceAll(name, " ", "_")+".yaml")
			os.WriteFile(path, []byte(c.text), 0o644)
			out, err := exec.Command(ferryd, "--config", path).CombinedOutput()
			var ee *exec.ExitError
			if !errors.As(err, &ee) || ee.ExitCode() != 2 {
				t.Fatalf("exit %v, want status 2\n%s", err, out)
			}
			if !strings.Contains(string(out), c.want) || strings.Count(strings.TrimSpace(string(out)), "\n") != 0 {
				t.Fatalf("want one line naming %q, got:\n%s", c.want, out)
			}
		})
	}
	t.Run("cores the EAL has no lcore for", func(t *testing.T) {
		needRoot(t)
		port := "ports:\n  - {name: port0, dev: \"net_null0\", addresses: [\"192.0.2.1/24\"]}\n"
		for name, c := range map[string]struct{ text, want string }{
			"not an lcore": {`eal: ["--no-huge", "-m", "256", "--no-pci", "--file-prefix", "fycores1", "--lcores", "0@0,1@0"]
cores: [2]
`, "cores[0]: lcore 2 is not one of the EAL's"},
			"the main lcore": {`eal: ["--no-huge", "-m", "256", "--no-pci", "--file-prefix", "fycores2", "--lcores", "0@0,1@0", "--main-lcore", "1"]
cores: [1]
`, "cores[0]: lcore 1 is the EAL's main lcore"},
			"no such CPU": {`eal: ["--no-huge", "-m", "256", "--no-pci", "--file-prefix", "fycores3"]
cores: [1000]
`, "cores[0]: lcore 1000 runs on CPU 1000"},
		} {
			path := filepath.Join(dir, strings.ReplaceAll(name, " ", "_")+".yaml")
			os.WriteFile(path, []byte(c.text+"api: "+filepath.Join(dir, "c.sock")+"\n"+port), 0o644)
			out, err := exec.Command(ferryd, "--config", path).CombinedOutput()
			var ee *exec.ExitError
			if !errors.As(err, &ee) || ee.ExitCode() != 2 || !strings.Contains(string(out), c.want) {
				t.Errorf("%s: exit %v, want status 2 and %q:\n%s", name, err, c.want, out)
			}
		}
	})
	out, err := exec.Command(ferryd, "--check", "--demo").CombinedOutput()
	if err != nil || !strings.Contains(string(out), "valid") {
		t.Fatalf("--check on the embedded demo: %v\n%s", err, out)
	}
	if _, err := os.Stat("/etc/ferry/ferry.yaml"); err != nil {
		out, err := exec.Command(ferryd).CombinedOutput()
		var ee *exec.ExitError
		if !errors.As(err, &ee) || ee.ExitCode() != 2 || !strings.Contains(string(out), "--demo") {
			t.Fatalf("ferryd without a configuration: %v\n%s", err, out)
		}
	}
	for _, bin := range []string{"ferryd", "ferryctl"} {
		out, err := exec.Command(filepath.Join(binDir(t), bin), "--version").CombinedOutput()
		if err != nil || !strings.HasPrefix(string(out), bin+" ") || !strings.Contains(string(out), "commit ") {
			t.Fatalf("%s --version: %v\n%s", bin, err, out)
		}
	}
	if out, err := exec.Command(ferryd, "--help").CombinedOutput(); err != nil || !strings.Contains(string(out), "Usage: ferryd") {
		t.Fatalf("--help: %v\n%s", err, out)
	}
	ferryctl := filepath.Join(binDir(t), "ferryctl")
	if out, err := exec.Command(ferryctl, "route", "--help").CombinedOutput(); err != nil || !strings.Contains(string(out), "route get") {
		t.Fatalf("ferryctl route --help: %v\n%s", err, out)
	}
	out, err = exec.Command(ferryctl, "--socket", filepath.Join(dir, "none.sock"), "route", "show").CombinedOutput()
	if err == nil || !strings.Contains(string(out), "cannot reach ferryd") {
		t.Fatalf("ferryctl without a daemon: %v\n%s", err, out)
	}
}

// A net_tap's kernel side moved into a namespace as soon as it appears,
// before ferryd set the port up, is refused with the reason; moved later,
// it works. Never does ferryd run with hosts behind a dead tap.
func TestTapMovedEarly(t *testing.T) {
	needRoot(t)
	dir := t.TempDir()
	tap := uniq("fmv")
	cfg := filepath.Join(dir, "ferry.yaml")
	os.WriteFile(cfg, []byte(fmt.Sprintf(`eal: ["--no-huge", "-m", "256", "--no-pci", "--file-prefix", "%s"]
cores: [%d]
api: %s
ports:
  - {name: port0, dev: "net_tap0,iface=%s", addresses: ["192.0.2.1/24"]}
`, uniq("fymv"), pipelineCore(), filepath.Join(dir, "s"), tap)), 0o644)
	a := newNetns(t, uniq("fmvA"))
	cmd := exec.Command(filepath.Join(binDir(t), "ferryd"), "--config", cfg)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	defer func() {
		cmd.Process.Signal(syscall.SIGTERM)
		<-done
	}()
	moved := false
	for i := 0; i < 2000 && !moved; i++ {
		moved = exec.Command("ip", "link", "set", tap, "netns", a.name).Run() == nil
		if !moved {
			time.Sleep(2 * time.Millisecond)
		}
	}
	if !moved {
		t.Fatal("the tap never appeared")
	}
	a.must(t, "ip", "addr", "add", "192.0.2.2/24", "dev", tap)
	a.must(t, "ip", "link", "set", tap, "up")
	select {
	case err := <-done:
		done <- err
		if err == nil || !strings.Contains(out.String(), "left ferryd's network namespace before the port was set up") {
			t.Fatalf("ferryd exit %v without the reason:\n%s", err, out.String())
		}
		t.Log("moved before the port was set up: refused with the reason")
	case <-time.After(5 * time.Second):
		if o, err := a.run(t, "ping", "-c", "2", "-W", "2", "192.0.2.1"); err != nil {
			t.Fatalf("ferryd runs but the moved tap is dead: %v\n%s\n%s", err, o, out.String())
		}
		t.Log("moved after the port was set up: it works")
	}
}
