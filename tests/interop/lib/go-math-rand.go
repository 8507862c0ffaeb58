// go-math-rand.go SEED SIZE: writes SIZE bytes of Go's math/rand (v1) stream for SEED to stdout,
// the bytes kubo's sharness helper `random-data -seed SEED -size SIZE` produced (go-test <= v0.2).
// Used by lib/inputs.mjs for the "go-math-rand" recipe (run with `go run`, standard library only).
package main

import (
	"bufio"
	"fmt"
	"io"
	"math/rand"
	"os"
	"strconv"
)

func main() {
	if len(os.Args) != 3 {
		fmt.Fprintln(os.Stderr, "usage: go run go-math-rand.go SEED SIZE")
		os.Exit(2)
	}
	seed, err1 := strconv.ParseInt(os.Args[1], 10, 64)
	size, err2 := strconv.ParseInt(os.Args[2], 10, 64)
	if err1 != nil || err2 != nil || size < 0 {
		fmt.Fprintln(os.Stderr, "go-math-rand: SEED and SIZE must be integers, SIZE >= 0")
		os.Exit(2)
	}
	out := bufio.NewWriterSize(os.Stdout, 1<<20)
	if _, err := io.CopyN(out, rand.New(rand.NewSource(seed)), size); err != nil {
		fmt.Fprintln(os.Stderr, "go-math-rand:", err)
		os.Exit(1)
	}
	if err := out.Flush(); err != nil {
		fmt.Fprintln(os.Stderr, "go-math-rand:", err)
		os.Exit(1)
	}
}
