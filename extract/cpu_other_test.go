//go:build !unix

package extract

func cpuSeconds() float64 { return 0 }
