package cli

import (
	"fmt"
	"runtime"
	"runtime/debug"
)

// Version and Commit are set at build time (the Makefile's -ldflags -X);
// a plain 'go build' leaves them to the module's build information.
var (
	Version = ""
	Commit  = ""
)

// VersionLine is what --version prints: the build's version and commit.
func VersionLine(prog string) string {
	v, c, dirty := Version, Commit, ""
	if bi, ok := debug.ReadBuildInfo(); ok {
		for _, s := range bi.Settings {
			switch {
			case s.Key == "vcs.revision" && c == "":
				c = s.Value
			case s.Key == "vcs.modified" && s.Value == "true" && Commit == "":
				dirty = "+dirty"
			}
		}
		if v == "" && bi.Main.Version != "" && bi.Main.Version != "(devel)" {
			v = bi.Main.Version
		}
	}
	if v == "" {
		v = "devel"
	}
	if c == "" {
		c = "unknown"
	}
	if len(c) > 12 {
		c = c[:12]
	}
	return fmt.Sprintf("%s %s (commit %s%s, %s)", prog, v, c, dirty, runtime.Version())
}
