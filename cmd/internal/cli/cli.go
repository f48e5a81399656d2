// Package cli holds what the binaries' command lines have in common.
package cli

import (
	"errors"
	"flag"
	"fmt"
	"os"
	"strconv"
	"strings"

	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
)

// Parse makes fs's usage the text followed by the flags' defaults, then
// parses args, which must hold flags only. ok false means exit with status:
// 0 after -help, 2 for a bad command line (already reported on stderr).
func Parse(fs *flag.FlagSet, usage string, args []string) (ok bool, status int) {
	fs.Usage = func() {
		fmt.Fprint(os.Stderr, usage)
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return false, 0
		}
		return false, 2
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(os.Stderr, "%s: unexpected argument %q\n", fs.Name(), fs.Arg(0))
		return false, 2
	}
	return true, 0
}

// ToolLogger is the console logger of the benchmark tools: timestamps,
// levels, no sampling or stack traces; debug adds debug messages.
func ToolLogger(debug bool) (*zap.Logger, error) {
	zc := zap.NewProductionConfig()
	if debug {
		zc.Level = zap.NewAtomicLevelAt(zap.DebugLevel)
	}
	zc.Encoding = "console"
	zc.Sampling = nil
	zc.DisableStacktrace = true
	zc.EncoderConfig.EncodeTime = zapcore.ISO8601TimeEncoder
	zc.EncoderConfig.EncodeLevel = zapcore.CapitalLevelEncoder
	return zc.Build()
}

// CPUList reads a comma-separated list of CPU numbers.
func CPUList(s string) ([]int, error) {
	var out []int
	for _, f := range strings.Split(s, ",") {
		c, err := strconv.Atoi(strings.TrimSpace(f))
		if err != nil || c < 0 {
			return nil, fmt.Errorf("%q: want CPU numbers separated by commas", s)
		}
		out = append(out, c)
	}
	return out, nil
}
