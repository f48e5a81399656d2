//go:build cgo

package dpdk

import (
	"fmt"
	"os"
	"path/filepath"
	"testing"
)

func TestRemoveStaleHugeFiles(t *testing.T) {
	mounts, err := hugetlbfsMounts()
	if err != nil || len(mounts) == 0 || os.Geteuid() != 0 {
		t.Skip("skipped: needs root and a hugetlbfs mount")
	}
	prefix := fmt.Sprintf("fytest%d", os.Getpid())
	other := prefix + "x"
	var files []string
	for i := 0; i < 3; i++ {
		for _, p := range []string{prefix, other} {
			f := filepath.Join(mounts[0], fmt.Sprintf("%smap_%d", p, i))
			fh, err := os.OpenFile(f, os.O_CREATE|os.O_RDWR, 0o600) // hugetlbfs refuses write(2)
			if err != nil {
				t.Skip("skipped: cannot create files in hugetlbfs:", err)
			}
			fh.Close()
			files = append(files, f)
		}
	}
	t.Cleanup(func() {
		for _, f := range files {
			os.Remove(f)
		}
	})
	n, err := RemoveStaleHugeFiles(prefix)
	if err != nil || n != 3 {
		t.Fatalf("removed %d files (%v), want 3", n, err)
	}
	for i := 0; i < 3; i++ {
		if _, err := os.Stat(filepath.Join(mounts[0], fmt.Sprintf("%smap_%d", other, i))); err != nil {
			t.Fatalf("removed another prefix's file: %v", err)
		}
	}
	if _, err := RemoveStaleHugeFiles("../etc"); err == nil {
		t.Fatal("accepted a prefix with a path in it")
	}
}
