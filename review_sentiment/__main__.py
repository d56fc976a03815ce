from review_sentiment.cli import main

main()
