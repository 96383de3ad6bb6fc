module github.com/rove-rpc/rove

go 1.26
