// Package cli holds what the binaries' command lines have in common.
package cli

import (
	"errors"
	"flag"
	"fmt"
	"os"
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
