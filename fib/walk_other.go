//go:build !amd64 || race

package fib

func walkNodes(w *walk) int { return walkNodesGo(w) }
