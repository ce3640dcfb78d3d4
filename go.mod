module github.com/syncd/syncd

go 1.26
