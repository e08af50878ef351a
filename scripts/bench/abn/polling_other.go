//go:build !linux

package main

import (
	"fmt"
	"time"
)

// pollingLoops needs epoll: elsewhere it only says so.
func pollingLoops(target, httpAddr, echo string, rate int, d time.Duration, newUsers bool, only string, newShare float64) (int, error) {
	fmt.Println("The polling open loops (Lookup over HTTP/JSON and on the stream): not measured on this OS (they need epoll)")
	return 0, nil
}
