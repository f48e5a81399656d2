package fib

import "ferry/internal/bgptable"

// GenerateBGP is bgptable.Generate.
//
// Deprecated: use bgptable.Generate.
func GenerateBGP(n int, seed int64) []Prefix { return bgptable.Generate(n, seed) }
