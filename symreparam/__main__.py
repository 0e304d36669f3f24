from symreparam.cli import main

main()
