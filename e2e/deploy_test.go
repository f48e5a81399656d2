package e2e

import (
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

// make install into a staging root puts every piece where the unit and
// the docs say, with the unit pointing at the installed binaries.
func TestInstallIntoStagingRoot(t *testing.T) {
	if _, err := exec.LookPath("make"); err != nil {
		t.Skip("skipped: make not installed")
	}
	_, file, _, _ := runtime.Caller(0)
	root := filepath.Join(filepath.Dir(file), "..")
	stage := t.TempDir()
	// The binaries are built already (make test builds first): install
	// them without building again.
	out, err := exec.Command("make", "-C", root, "-o", "build", "install", "DESTDIR="+stage, "PREFIX=/usr").CombinedOutput()
	if err != nil {
		t.Fatalf("make install: %v\n%s", err, out)
	}
	for path, mode := range map[string]os.FileMode{
		"usr/sbin/ferryd": 0o755, "usr/bin/ferryctl": 0o755, "usr/libexec/ferry/reserve-hugepages": 0o755,
		"etc/systemd/system/ferryd.service": 0o644, "etc/ferry/ferry.yaml": 0o640, "usr/share/doc/ferry/deploy.md": 0o644,
	} {
		st, err := os.Stat(filepath.Join(stage, path))
		if err != nil {
			t.Errorf("%s not installed: %v", path, err)
			continue
		}
		if st.Mode().Perm() != mode {
			t.Errorf("%s: mode %v, want %v", path, st.Mode().Perm(), mode)
		}
	}
	unit, _ := os.ReadFile(filepath.Join(stage, "etc/systemd/system/ferryd.service"))
	for _, want := range []string{"Type=notify", "ExecStart=/usr/sbin/ferryd --config /etc/ferry/ferry.yaml",
		"ExecStartPre=/usr/libexec/ferry/reserve-hugepages", "ExecReload=/bin/kill -HUP $MAINPID", "Restart=on-failure", "LimitMEMLOCK=infinity", "CPUWeight=1000"} {
		if !strings.Contains(string(unit), want) {
			t.Errorf("unit lacks %q:\n%s", want, unit)
		}
	}
	if sa, err := exec.LookPath("systemd-analyze"); err == nil {
		if out, err := exec.Command(sa, "verify", "--root="+stage, "/etc/systemd/system/ferryd.service").CombinedOutput(); err != nil {
			t.Logf("systemd-analyze verify: %v\n%s", err, out)
		}
	}
	// The example configuration is one ferryd accepts.
	out, err = exec.Command(filepath.Join(stage, "usr/sbin/ferryd"), "--check", "--config", filepath.Join(stage, "etc/ferry/ferry.yaml")).CombinedOutput()
	if err != nil {
		t.Fatalf("the installed example does not check: %v\n%s", err, out)
	}
	// A second install keeps the operator's configuration.
	os.WriteFile(filepath.Join(stage, "etc/ferry/ferry.yaml"), []byte("# mine\n"), 0o640)
	if out, err := exec.Command("make", "-C", root, "-o", "build", "install", "DESTDIR="+stage, "PREFIX=/usr").CombinedOutput(); err != nil {
		t.Fatalf("make install again: %v\n%s", err, out)
	}
	if b, _ := os.ReadFile(filepath.Join(stage, "etc/ferry/ferry.yaml")); string(b) != "# mine\n" {
		t.Fatal("make install overwrote /etc/ferry/ferry.yaml")
	}
}

// Under systemd (Type=notify), ferryd says READY=1 once it forwards,
// RELOADING=1 and READY=1 around a reload, and STOPPING=1.
func TestSystemdNotify(t *testing.T) {
	needRoot(t)
	dir := t.TempDir()
	sockPath := filepath.Join(dir, "notify")
	ln, err := net.ListenUnixgram("unixgram", &net.UnixAddr{Name: sockPath, Net: "unixgram"})
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	msgs := make(chan string, 16)
	go func() {
		buf := make([]byte, 1024)
		for {
			n, _, err := ln.ReadFromUnix(buf)
			if err != nil {
				return
			}
			msgs <- string(buf[:n])
		}
	}()
	taps := [2]string{uniq("fna"), uniq("fnb")}
	cfg := strings.ReplaceAll(tapConfig("fynotify", taps, "", "", ""), "@SOCKET@", filepath.Join(dir, "ferry.sock"))
	cfgPath := filepath.Join(dir, "ferry.yaml")
	os.WriteFile(cfgPath, []byte(cfg), 0o644)
	cmd := exec.Command(filepath.Join(binDir(t), "ferryd"), "--config", cfgPath)
	cmd.Env = append(os.Environ(), "NOTIFY_SOCKET="+sockPath)
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	logf, _ := os.Create(filepath.Join(dir, "ferryd.log"))
	defer logf.Close()
	cmd.Stdout, cmd.Stderr = logf, logf
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer cmd.Process.Kill()
	expect := func(prefix string) {
		t.Helper()
		for {
			select {
			case m := <-msgs:
				if strings.HasPrefix(m, prefix) {
					return
				}
			case <-time.After(30 * time.Second):
				b, _ := os.ReadFile(logf.Name())
				t.Fatalf("no %s from ferryd\n%s", prefix, b)
			}
		}
	}
	expect("READY=1")
	cmd.Process.Signal(syscall.SIGHUP)
	expect("RELOADING=1")
	expect("READY=1")
	cmd.Process.Signal(syscall.SIGTERM)
	expect("STOPPING=1")
	if err := cmd.Wait(); err != nil {
		t.Fatalf("ferryd exit: %v", err)
	}
}
