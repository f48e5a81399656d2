package e2e

import (
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
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
	out, err := exec.Command(ferryd, "--check").CombinedOutput()
	if err != nil || !strings.Contains(string(out), "valid") {
		t.Fatalf("--check on the embedded default: %v\n%s", err, out)
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
