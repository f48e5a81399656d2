//go:build !amd64.v3

package fib

func walkNodes(w *walk) int { return walkNodesGo(w) }
