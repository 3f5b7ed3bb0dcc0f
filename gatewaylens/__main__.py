from gatewaylens.cli import main

main()
