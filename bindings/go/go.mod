module example.invalid/kepmlog/bindings/go

go 1.22
