//go:build tools

// Package tools pins the Go modules gatewaylens builds or reads for BricksLLM.  It is never
// compiled (build tag "tools"); it keeps `go mod tidy` from dropping the tiktoken-go-loader
// requirement, whose embedded BPE files scripts/install-bricksllm.sh copies into BricksLLM's
// tiktoken cache so that BricksLLM does not download them at start.
package tools

import _ "github.com/pkoukk/tiktoken-go-loader"
