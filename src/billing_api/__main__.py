from billing_api.cli import main

main()
