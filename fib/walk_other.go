//go:build !amd64.v3 || race

package fib

func walkNodes(w *walk) int { return walkNodesGo(w) }
