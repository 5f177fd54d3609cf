package main

// The pebble system of the kv-* workloads opens storage engine "pebble",
// which package pebblekv registers when it is imported.
import _ "github.com/ringlog/ringlog/storage/pebblekv"
