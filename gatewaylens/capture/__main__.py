from gatewaylens.capture.cli import main

main()
