from services.front.server import main

main()
