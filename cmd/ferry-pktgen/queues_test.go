package main

import (
	"slices"
	"testing"
)

func TestSplitDestinations(t *testing.T) {
	got := splitDestinations([]uint32{1, 2, 3, 4, 5}, 2)
	if !slices.Equal(got[0], []uint32{1, 3, 5}) || !slices.Equal(got[1], []uint32{2, 4}) {
		t.Fatalf("split over 2 queues: %v", got)
	}
	// Fewer destinations than queues: every queue sends them all.
	got = splitDestinations([]uint32{7}, 3)
	for q := range got {
		if !slices.Equal(got[q], []uint32{7}) {
			t.Fatalf("queue %d: %v", q, got[q])
		}
	}
	if c, err := parseCPUs("", 3); err != nil || !slices.Equal(c, []int{3}) {
		t.Fatalf("default CPUs: %v %v", c, err)
	}
	if _, err := parseCPUs("1,x", 0); err == nil {
		t.Fatal("a bad CPU list was taken")
	}
}
