//go:build !linux

package pager

import "os"

func probeFile() (*os.File, func(), error) { return tempProbeFile() }
