from gatewaylens.mock.cli import main

main()
