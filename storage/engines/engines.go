// Package engines registers every storage engine of this module with
// package storage, so that storage.Open takes any of their names:
//
//	import _ "github.com/ringlog/ringlog/storage/engines"
//
//	db, err := storage.Open("ringlog", dir, nil) // or "pebble"
//
// A program that needs one engine imports that engine's package instead
// (storage/logkv, storage/pebblekv) and links only it.
package engines

import (
	_ "github.com/ringlog/ringlog/storage/logkv"    // "ringlog"
	_ "github.com/ringlog/ringlog/storage/pebblekv" // "pebble"
)
